"""Reads of a service's dead letters (the events its consumers parked). Parking and replay live with
the consumer (pena.consumer); the operations routes only call these."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.tables import dead_letters

LIST_LIMIT = 500


async def parked_dead_letters(
    session: AsyncSession, include_replayed: bool = False, *, limit: int = LIST_LIMIT
) -> list[dict[str, Any]]:
    """The service's dead letters, oldest first: those not replayed yet, or all with `include_replayed`."""
    query = select(
        dead_letters.c.id,
        dead_letters.c.consumer,
        dead_letters.c.event_id,
        dead_letters.c.event_type,
        dead_letters.c.origin,
        dead_letters.c.error,
        dead_letters.c.attempts,
        dead_letters.c.created_at,
        dead_letters.c.replayed_at,
        dead_letters.c.replay_outcome,
    )
    if not include_replayed:
        query = query.where(dead_letters.c.replayed_at.is_(None))
    rows = (await session.execute(query.order_by(dead_letters.c.id).limit(limit))).all()
    return [row._asdict() for row in rows]
