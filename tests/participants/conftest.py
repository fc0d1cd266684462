from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from pena.runtime import Runtime
from services.participants.app import definition as participants


@dataclass
class Registry:
    runtime: Runtime
    client: httpx.AsyncClient
    admin: dict[str, str]
    integrator: dict[str, str]


@pytest.fixture
async def registry(make_runtime, api, auth) -> AsyncIterator[Registry]:
    runtime = await make_runtime([participants])
    async with api(runtime) as client:
        yield Registry(runtime, client, auth("admin"), auth("integrator"))
