"""Consumed events: Monev results are assessed (mentoring visits after graduation are checked for a
relapse instead, relapse.py); participant events feed a small read model. The
start-up hook seeds reference data."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts.monev import MonevCompleted
from pena.contracts.participants import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.contracts.training import BatchScheduled
from pena.runtime import ServiceRuntime
from services.graduation import erasure, queries
from services.graduation.assessments import assess_monev
from services.graduation.models import BatchView
from services.graduation.reference import read_seed, seed_reference_data
from services.graduation.relapse import check_mentoring_visit


async def on_monev_completed(session: AsyncSession, delivery: Delivery) -> None:
    result: MonevCompleted = delivery.payload
    if result.kind == "mentoring":  # a visit after graduation: checked for relapse, not re-assessed
        await check_mentoring_visit(session, result=result, clock=delivery.clock)
        return
    await assess_monev(session, result=result, clock=delivery.clock)
    if await erasure.erased(session, result.participant_id):  # a result that arrived after the erasure
        await erasure.erase_participant(session, participant_id=result.participant_id)


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    """The participant read model: the newest version wins; an older event only fills a region still
    unknown (queries.apply_participant_facts)."""
    await on_participant_events(session, [delivery])


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    await on_participant_events(session, [delivery])


async def on_participant_events(session: AsyncSession, deliveries: list[Delivery]) -> None:
    """The set-based form the Kafka consumer uses for a fetched run of participant.* events; an
    erasure then blanks the family's figures (services/graduation/erasure.py)."""
    await queries.apply_participant_facts(session, [_view(d) for d in deliveries])
    for delivery in deliveries:
        change = delivery.payload
        if isinstance(change, ParticipantStatusChanged) and change.to_status == "erased":
            await erasure.erase_participant(session, participant_id=change.participant_id)


def _view(delivery: Delivery) -> dict[str, Any]:
    """The participant view row an event brings. A status change carries no region (the stored one is
    kept), sex or birth year (those columns are left out: they stay as the registry last announced)."""
    event: ParticipantRegistered | ParticipantUpdated | ParticipantStatusChanged = delivery.payload
    row: dict[str, Any] = {
        "participant_id": event.participant_id,
        "version": event.version,
        "updated_at": delivery.clock.now(),
        "household_id": event.household_id,
        "kk_token": event.kk_token,
    }
    if isinstance(event, ParticipantStatusChanged):
        return row | {"region_code": None, "status": event.to_status}
    return row | {
        "region_code": event.region_code,
        "status": event.status,
        "sex": event.sex,
        "birth_year": event.birth_year,
    }


async def on_batch_scheduled(session: AsyncSession, delivery: Delivery) -> None:
    """Statistics by training method (the batch's) and the names training gives centres, methods and
    business fields."""
    batch: BatchScheduled = delivery.payload
    now = delivery.clock.now()
    await queries.upsert_batch_view(
        session,
        BatchView(
            batch_id=batch.batch_id,
            centre_id=batch.centre_id,
            method=batch.method,
            business_field=batch.business_field,
            updated_at=now,
        ),
    )
    named = (
        ("centre", batch.centre_id, batch.centre_name),
        ("method", batch.method, batch.method_name),
        ("business_field", batch.business_field, batch.business_field_name),
    )
    await queries.upsert_reference_names(
        session,
        [{"dimension": d, "code": code, "name": name, "updated_at": now} for d, code, name in named if name],
    )


async def load_seed(runtime: ServiceRuntime) -> None:
    """Seeds reference data and the default policy into an empty database (idempotent)."""
    seed = await asyncio.to_thread(read_seed)
    async with runtime.db.transaction() as session:
        await seed_reference_data(session, seed=seed, clock=runtime.clock)


HANDLERS = {
    "monev.completed": on_monev_completed,
    "participant.registered": on_participant_facts,
    "participant.updated": on_participant_facts,
    "participant.status_changed": on_participant_status_changed,
    "training.batch_scheduled": on_batch_scheduled,
}
BATCH_HANDLERS = {name: on_participant_events for name in HANDLERS if name.startswith("participant.")}
STARTUP = [load_seed]
