"""Consumed events: Monev results are assessed; participant events feed a small read model. The
start-up hook seeds reference data."""

from __future__ import annotations

import asyncio

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts.monev import MonevCompleted
from pena.contracts.participants import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.runtime import ServiceRuntime
from services.graduation import erasure, queries
from services.graduation.assessments import assess_monev
from services.graduation.models import ParticipantView
from services.graduation.reference import read_seed, seed_reference_data


async def on_monev_completed(session: AsyncSession, delivery: Delivery) -> None:
    result: MonevCompleted = delivery.payload
    await assess_monev(session, result=result, clock=delivery.clock)
    if await erasure.erased(session, result.participant_id):  # a result that arrived after the erasure
        await erasure.erase_participant(session, participant_id=result.participant_id)


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    """The participant read model: the newest version wins; an older event only fills a region still
    unknown (queries.apply_participant_facts)."""
    facts: ParticipantRegistered | ParticipantUpdated = delivery.payload
    await queries.apply_participant_facts(
        session,
        ParticipantView(
            participant_id=facts.participant_id,
            region_code=facts.region_code,
            status=facts.status,
            version=facts.version,
            updated_at=delivery.clock.now(),
            household_id=facts.household_id,
            kk_token=facts.kk_token,
        ),
    )


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    change: ParticipantStatusChanged = delivery.payload
    await queries.apply_participant_facts(
        session,
        ParticipantView(
            participant_id=change.participant_id,
            region_code=None,
            status=change.to_status,
            version=change.version,
            updated_at=delivery.clock.now(),
            household_id=change.household_id,
            kk_token=change.kk_token,
        ),
    )
    if change.to_status == "erased":
        await erasure.erase_participant(session, participant_id=change.participant_id)


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
}
STARTUP = [load_seed]
