"""A running training service next to a stand-in participant registry (in-process bus)."""

from __future__ import annotations

from typing import Any

import pytest

from pena.runtime import Runtime
from services.training.app import definition as training
from tests.support import participants_publisher


@pytest.fixture
async def runtime(make_runtime: Any) -> Runtime:
    runtime: Runtime = await make_runtime([participants_publisher, training], bus="inprocess")
    return runtime
