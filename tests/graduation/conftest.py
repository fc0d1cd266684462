from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pena.clock import ManualClock
from pena.runtime import Runtime
from services.graduation.app import definition as graduation
from tests.support import monev_publisher, participants_publisher

START = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)  # 10:00 WIB on 5 January 2026


@dataclass
class Env:
    runtime: Runtime
    client: httpx.AsyncClient
    clock: ManualClock


@pytest.fixture
async def env(make_runtime: Any, api: Any, auth: Any) -> AsyncIterator[Env]:
    async for built in _env(make_runtime, api, auth, [monev_publisher, graduation]):
        yield built


@pytest.fixture
async def family_env(make_runtime: Any, api: Any, auth: Any) -> AsyncIterator[Env]:
    """env with a stand-in registry too (participant events: families, erasure)."""
    async for built in _env(make_runtime, api, auth, [monev_publisher, participants_publisher, graduation]):
        yield built


async def _env(make_runtime: Any, api: Any, auth: Any, definitions: list[Any]) -> AsyncIterator[Env]:
    clock = ManualClock(START)
    runtime = await make_runtime(definitions, bus="inprocess", clock=clock)
    async with api(runtime) as client:
        admin = auth("admin", sub="policy-admin")
        # reference figures for 2026: example values chosen for the tests, not official figures
        wages = await client.put(
            "/v1/graduation/reference/minimum-wages",
            json=[
                {
                    "level": "umk",
                    "region_code": "1371",
                    "year": 2026,
                    "amount": 3_000_000,
                    "source": "test example",
                    "is_example": True,
                },
                {
                    "level": "ump",
                    "region_code": "13",
                    "year": 2026,
                    "amount": 2_900_000,
                    "source": "test example",
                    "is_example": True,
                },
            ],
            headers=admin,
        )
        assert wages.status_code == 200, wages.text
        lines = await client.put(
            "/v1/graduation/reference/poverty-lines",
            content="year,amount,source,is_example\n2026,400000,test example,true\n",
            headers=admin | {"Content-Type": "text/csv"},
        )
        assert lines.json() == {"upserted": 1}, lines.text
        yield Env(runtime, client, clock)
