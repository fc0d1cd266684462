"""Consumed events: participant.* feed the local read model of who may enrol.

Events may arrive twice (the inbox makes that a no-op) or out of order: a row only moves forward,
to a version newer than the one stored, so an old event arriving late changes nothing."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from services.training import queries


async def on_participant_registered(session: AsyncSession, delivery: Delivery) -> None:
    payload: ParticipantRegistered = delivery.payload
    await queries.upsert_eligible_participant(
        session,
        participant_id=payload.participant_id,
        version=payload.version,
        at=delivery.clock.now(),
        values={"status": payload.status, "region_code": payload.region_code},
    )


async def on_participant_updated(session: AsyncSession, delivery: Delivery) -> None:
    payload: ParticipantUpdated = delivery.payload
    await queries.upsert_eligible_participant(
        session,
        participant_id=payload.participant_id,
        version=payload.version,
        at=delivery.clock.now(),
        values={"status": payload.status, "region_code": payload.region_code},
    )


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    # carries no region: a status change seen before the registration still records the status;
    # the region fills in when a newer registered/updated event brings it
    payload: ParticipantStatusChanged = delivery.payload
    await queries.upsert_eligible_participant(
        session,
        participant_id=payload.participant_id,
        version=payload.version,
        at=delivery.clock.now(),
        values={"status": payload.to_status},
    )


HANDLERS = {
    "participant.registered": on_participant_registered,
    "participant.updated": on_participant_updated,
    "participant.status_changed": on_participant_status_changed,
}
