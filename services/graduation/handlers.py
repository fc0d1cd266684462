"""Consumed events: Monev results are assessed; participant events feed a small read model. The
start-up hook seeds reference data."""

from __future__ import annotations

import asyncio

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts.monev import MonevCompleted
from pena.contracts.participants import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.runtime import ServiceRuntime
from services.graduation import service


async def on_monev_completed(session: AsyncSession, delivery: Delivery) -> None:
    result: MonevCompleted = delivery.payload
    await service.assess_monev(session, result=result, clock=delivery.clock)


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    facts: ParticipantRegistered | ParticipantUpdated = delivery.payload
    await service.apply_participant_facts(
        session,
        participant_id=facts.participant_id,
        version=facts.version,
        region_code=facts.region_code,
        status=facts.status,
        clock=delivery.clock,
    )


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    change: ParticipantStatusChanged = delivery.payload
    await service.apply_participant_facts(
        session,
        participant_id=change.participant_id,
        version=change.version,
        region_code=None,
        status=change.to_status,
        clock=delivery.clock,
    )


async def load_seed(runtime: ServiceRuntime) -> None:
    """Seeds reference data and the default policy into an empty database (idempotent)."""
    seed = await asyncio.to_thread(service.read_seed)
    async with runtime.db.transaction() as session:
        await service.seed_reference_data(session, seed=seed, clock=runtime.clock)


HANDLERS = {
    "monev.completed": on_monev_completed,
    "participant.registered": on_participant_facts,
    "participant.updated": on_participant_facts,
    "participant.status_changed": on_participant_status_changed,
}
STARTUP = [load_seed]
