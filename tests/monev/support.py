"""Test support for the monev service: training completions and registrations with a baseline, as the
stand-in training service and registry announce them, the scheduler and task readers. Stand-in publishers
and outbox/audit readers are shared: tests/support.py."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any, TypeVar

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.contracts import TrainingCompleted
from pena.runtime import Runtime
from pena.scheduler import Scheduler
from services.monev.app import definition as monev
from services.monev.models import MonevTask
from tests import support
from tests.support import PADANG_VILLAGE, Announcement, publish

T = TypeVar("T")

WIB = timezone(timedelta(hours=7))


def completion(
    participant_id: str,
    completed_at: datetime,
    *,
    batch_id: str = "batch-1",
    centre_id: str = "centre-padang",
    business_field: str = "fashion_menjahit",
    region_code: str = PADANG_VILLAGE,
) -> TrainingCompleted:
    return TrainingCompleted(
        participant_id=participant_id,
        batch_id=batch_id,
        centre_id=centre_id,
        business_field=business_field,
        region_code=region_code,
        completed_at=completed_at,
        attendance_rate=0.9,
        sessions_attended=9,
        sessions_total=10,
    )


async def announce_completions(runtime: Runtime, *completions: TrainingCompleted, drain: bool = True) -> None:
    """Emits training.completed from the stand-in training service; on the in-process bus drain() delivers."""
    await publish(
        runtime,
        *(Announcement("training.completed", c, c.participant_id, c.completed_at) for c in completions),
        drain=drain,
    )


async def register(
    runtime: Runtime,
    participant_id: str,
    *,
    region_code: str = PADANG_VILLAGE,
    household_size: int | None = 4,
    income: int | None = 1_000_000,
    version: int = 1,
    drain: bool = True,
) -> None:
    """A participant with a baseline (monev measures against household size and income)."""
    await support.register(
        runtime,
        participant_id,
        region_code=region_code,
        household_size=household_size,
        income=income,
        version=version,
        at=datetime(2025, 10, 1, tzinfo=UTC),
        drain=drain,
    )


def scheduler(runtime: Runtime, *, batch_size: int = 500) -> Scheduler:
    return Scheduler(
        runtime.service("monev").db, monev.jobs, runtime.clock, batch_handlers=monev.batch_jobs, batch_size=batch_size
    )


async def in_monev(runtime: Runtime, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    return await support.in_service(runtime, "monev", work)


async def tasks(runtime: Runtime) -> list[MonevTask]:
    async def read(session: AsyncSession) -> list[MonevTask]:
        return list((await session.execute(select(MonevTask).order_by(MonevTask.due_at))).scalars().all())  # type: ignore[arg-type]

    return await in_monev(runtime, read)


def survey_body(visit: date = date(2026, 3, 2), **overrides: Any) -> dict[str, Any]:
    return {
        "visit_date": visit.isoformat(),
        "respondent": "participant",
        "business_status": "active",
        "business_field": "fashion_menjahit",
        "monthly_revenue": 3_500_000,
        "monthly_household_income": 2_000_000,
        "household_size": 4,
        "workers_employed": 0,
        "business_assets": 5_000_000,
        "savings": 250_000,
        "assistance_still_received": [],
        "welfare_self_assessment": 4,
        "voluntary_exit_statement": True,
        "notes": "visited at the stall",
        **overrides,
    }
