"""A running monev with one due task: participant p-1 in Padang (baseline Rp 1,000,000 for 4 people),
training completed 30 November 2025, covered by facilitator fac-1; the clock stands at 10 March 2026."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from pena.clock import ManualClock
from pena.runtime import Runtime
from tests.monev.support import WIB, announce_completions, completion, monev, register, scheduler, tasks
from tests.support import participants_publisher, training_publisher


@dataclass
class World:
    runtime: Runtime
    client: httpx.AsyncClient
    clock: ManualClock
    admin: dict[str, str]
    facilitator: dict[str, str]
    task_id: str


@pytest.fixture
async def world(make_runtime, api, auth) -> Any:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    admin = auth("admin")
    async with api(runtime) as client:
        covered = await client.post(
            "/v1/monev/facilitators", json={"subject": "fac-1", "region_prefix": "1371"}, headers=admin
        )
        assert covered.status_code == 201, covered.text
        await register(runtime, "p-1", income=1_000_000, household_size=4)
        await announce_completions(runtime, completion("p-1", datetime(2025, 11, 30, 10, 0, tzinfo=WIB)))
        clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
        assert await scheduler(runtime).drain() == 1
        [task] = await tasks(runtime)
        assert task.status == "due"
        assert task.assignee == "fac-1"
        yield World(runtime, client, clock, admin, auth("facilitator", sub="fac-1"), task.id)
