"""Test support for the monev service: stand-in "training" and "participants" publishers that announce
completions and registrations through their own outboxes (as the real services do), and shortcuts."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import MetaData, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.contracts import ParticipantRegistered, TrainingCompleted
from pena.definition import ServiceDefinition
from pena.outbox import emit
from pena.runtime import Runtime
from pena.scheduler import Scheduler
from pena.tables import audit_log, outbox
from services.monev.app import definition as monev
from services.monev.models import MonevTask
from tests.kernel.helpers import eventually  # noqa: F401 - re-exported for this suite

training_stub = ServiceDefinition(name="training", metadata=MetaData())
participants_stub = ServiceDefinition(name="participants", metadata=MetaData())
WIB = timezone(timedelta(hours=7))
PADANG_VILLAGE = "1371011001"


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
    training = runtime.service("training")
    async with training.db.transaction() as session:
        for c in completions:
            await emit(session, "training.completed", c, subject=c.participant_id, time=c.completed_at)
    if drain:
        assert training.relay is not None
        await training.relay.drain()


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
    registry = runtime.service("participants")
    at = datetime(2025, 10, 1, tzinfo=UTC)
    async with registry.db.transaction() as session:
        await emit(
            session,
            "participant.registered",
            ParticipantRegistered(
                participant_id=participant_id,
                version=version,
                nik_token="t" * 64,
                registered_at=at,
                region_code=region_code,
                household_size=household_size,
                baseline_monthly_income=income,
                status="active",
            ),
            subject=participant_id,
            time=at,
        )
    if drain:
        assert registry.relay is not None
        await registry.relay.drain()


def scheduler(runtime: Runtime, *, batch_size: int = 500) -> Scheduler:
    return Scheduler(runtime.service("monev").db, monev.jobs, runtime.clock, batch_size=batch_size)


async def in_monev(runtime: Runtime, work: Callable[[AsyncSession], Awaitable[Any]]) -> Any:
    async with runtime.service("monev").db.transaction() as session:
        return await work(session)


async def tasks(runtime: Runtime) -> list[MonevTask]:
    async def read(session: AsyncSession) -> list[MonevTask]:
        return list((await session.execute(select(MonevTask).order_by(MonevTask.due_at))).scalars().all())  # type: ignore[arg-type]

    return list(await in_monev(runtime, read))


async def events(runtime: Runtime, name: str, service: str = "monev") -> list[dict[str, Any]]:
    async with runtime.service(service).db.transaction() as session:
        rows = await session.execute(select(outbox.c.envelope).where(outbox.c.event_name == name).order_by(outbox.c.id))
        return list(rows.scalars().all())


async def outbox_count(runtime: Runtime, name: str) -> int:
    async def count(session: AsyncSession) -> int:
        query = select(func.count()).select_from(outbox).where(outbox.c.event_name == name)
        return int((await session.execute(query)).scalar_one())

    return int(await in_monev(runtime, count))


async def mark_unpublished(runtime: Runtime, service: str) -> None:
    """Makes the relay publish every row again, as after a crash between publishing and marking."""
    async with runtime.service(service).db.transaction() as session:
        await session.execute(update(outbox).values(published_at=None))


async def audit_actions(runtime: Runtime) -> list[str]:
    async def read(session: AsyncSession) -> list[str]:
        return list((await session.execute(select(audit_log.c.action).order_by(audit_log.c.id))).scalars().all())

    return list(await in_monev(runtime, read))


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
