"""Consumed events: participant.* feed the local read model of who may enrol.

Events may arrive twice (the inbox makes that a no-op) or out of order: a row only moves forward,
to a version newer than the one stored, so an old event arriving late changes nothing."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.import_runs import IMPORT_JOB, chunk_job
from services.training import backfill, queries

ParticipantEvent = ParticipantRegistered | ParticipantUpdated | ParticipantStatusChanged


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    await on_participant_events(session, [delivery])


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    await on_participant_events(session, [delivery])


async def on_participant_events(session: AsyncSession, deliveries: list[Delivery]) -> None:
    """The set-based form the Kafka consumer uses for a fetched run of participant.* events: one
    read-model upsert for the run (pena.readmodel: the same outcome as one by one, in order)."""
    await queries.upsert_eligible_participants(session, [_row(d) for d in deliveries])


def _row(delivery: Delivery) -> dict[str, Any]:
    """The row's key, the event's version, when it was applied and the columns the event carries.
    A status change carries no region: seen before the registration it still records the status;
    the region fills in when a newer registered/updated event brings it."""
    event: ParticipantEvent = delivery.payload
    row = {"participant_id": event.participant_id, "version": event.version, "updated_at": delivery.clock.now()}
    if isinstance(event, ParticipantStatusChanged):
        return row | {"status": event.to_status}
    return row | {
        "status": event.status,
        "region_code": event.region_code,
        # the facts the entry rules read (services/training/entry_rules.py)
        "birth_year": event.birth_year,
        "business_field": event.business_field,
        "assistance_programmes": list(event.assistance_programmes),
        "dtsen_decile": event.dtsen_decile,
    }


HANDLERS = {
    "participant.registered": on_participant_facts,
    "participant.updated": on_participant_facts,
    "participant.status_changed": on_participant_status_changed,
}
BATCH_HANDLERS = dict.fromkeys(HANDLERS, on_participant_events)
JOBS = {IMPORT_JOB: chunk_job(backfill.KINDS)}  # one chunk of a backfill import per job (pena.import_runs)
