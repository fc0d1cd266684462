"""Consumed events: Monev results are assessed; participant events feed a small read model. The
start-up hook seeds reference data."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts.monev import MonevCompleted
from pena.contracts.participants import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.runtime import ServiceRuntime
from services.graduation import queries
from services.graduation.assessments import assess_monev
from services.graduation.reference import read_seed, seed_reference_data


async def on_monev_completed(session: AsyncSession, delivery: Delivery) -> None:
    result: MonevCompleted = delivery.payload
    await assess_monev(session, result=result, clock=delivery.clock)


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    """The participant read model: the newest version wins; an older event only fills a region still
    unknown (queries.apply_participant_facts)."""
    await on_participant_events(session, [delivery])


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    await on_participant_events(session, [delivery])


async def on_participant_events(session: AsyncSession, deliveries: list[Delivery]) -> None:
    """The set-based form the Kafka consumer uses for a fetched run of participant.* events."""
    await queries.apply_participant_facts(session, [_view(d) for d in deliveries])


def _view(delivery: Delivery) -> dict[str, Any]:
    """The participant view row an event brings (every column of ParticipantView)."""
    event: ParticipantRegistered | ParticipantUpdated | ParticipantStatusChanged = delivery.payload
    if isinstance(event, ParticipantStatusChanged):  # carries no region: the stored one is kept
        region_code, status = None, event.to_status
    else:
        region_code, status = event.region_code, event.status
    return {
        "participant_id": event.participant_id,
        "region_code": region_code,
        "status": status,
        "version": event.version,
        "updated_at": delivery.clock.now(),
    }


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
BATCH_HANDLERS = {name: on_participant_events for name in HANDLERS if name.startswith("participant.")}
STARTUP = [load_seed]
