"""Consumed events: participant.* feed the local read model of who may enrol.

Events may arrive twice (the inbox makes that a no-op) or out of order: a row only moves forward,
to a version newer than the one stored, so an old event arriving late changes nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from services.training.models import EligibleParticipant


async def _upsert_if_newer(
    session: AsyncSession, *, participant_id: str, version: int, at: datetime, values: dict[str, Any]
) -> None:
    table = EligibleParticipant.__table__  # type: ignore[attr-defined]
    statement = pg_insert(table).values(participant_id=participant_id, version=version, updated_at=at, **values)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.participant_id],
        set_={
            "version": statement.excluded.version,
            "updated_at": statement.excluded.updated_at,
            **{name: statement.excluded[name] for name in values},
        },
        where=table.c.version < statement.excluded.version,
    )
    await session.execute(statement)


async def on_participant_registered(session: AsyncSession, delivery: Delivery) -> None:
    payload: ParticipantRegistered = delivery.payload
    await _upsert_if_newer(
        session,
        participant_id=payload.participant_id,
        version=payload.version,
        at=delivery.clock.now(),
        values={"status": payload.status, "region_code": payload.region_code},
    )


async def on_participant_updated(session: AsyncSession, delivery: Delivery) -> None:
    payload: ParticipantUpdated = delivery.payload
    await _upsert_if_newer(
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
    await _upsert_if_newer(
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
