"""Consumed events: participant.* feed the local read model of who may enrol.

Events may arrive twice (the inbox makes that a no-op) or out of order: a row only moves forward,
to a version newer than the one stored, so an old event arriving late changes nothing."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from services.training import queries

ParticipantEvent = ParticipantRegistered | ParticipantUpdated | ParticipantStatusChanged


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    facts: ParticipantRegistered | ParticipantUpdated = delivery.payload
    row = {
        "status": facts.status,
        "region_code": facts.region_code,
        # the facts the entry rules read (services/training/entry_rules.py)
        "birth_year": facts.birth_year,
        "business_field": facts.business_field,
        "assistance_programmes": list(facts.assistance_programmes),
        "dtsen_decile": facts.dtsen_decile,
    }
    await queries.upsert_eligible_participant(session, _versioned(facts, delivery) | row)


def _versioned(facts: ParticipantEvent, delivery: Delivery) -> dict[str, Any]:
    """The row's key, the event's version and when it was applied."""
    return {"participant_id": facts.participant_id, "version": facts.version, "updated_at": delivery.clock.now()}


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    # carries no region: a status change seen before the registration still records the status;
    # the region fills in when a newer registered/updated event brings it
    change: ParticipantStatusChanged = delivery.payload
    await queries.upsert_eligible_participant(session, _versioned(change, delivery) | {"status": change.to_status})


HANDLERS = {
    "participant.registered": on_participant_facts,
    "participant.updated": on_participant_facts,
    "participant.status_changed": on_participant_status_changed,
}
