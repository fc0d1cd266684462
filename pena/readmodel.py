"""Read models fed by events: "the newer version wins".

A service that keeps a local copy of another service's facts (training's eligible participants,
monev's baselines, graduation's participant view) stores each row with the `version` its event
carried. Events may arrive twice or out of order, so a row only ever moves forward: the write is one
INSERT ... ON CONFLICT DO UPDATE ... WHERE stored.version < incoming.version, which is atomic under
concurrent deliveries and leaves the row untouched for an equal or older version."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import Table, func
from sqlalchemy.dialects.postgresql import insert
from sqlmodel.ext.asyncio.session import AsyncSession


async def upsert_if_newer(
    session: AsyncSession,
    table: Table,
    row: Mapping[str, Any],
    *,
    key: str,
    update: Collection[str] | None = None,
    keep_when_null: Collection[str] = (),
) -> None:
    """Inserts `row` (which holds `key` and `version`); when a row with that key exists and its
    version is older than `row["version"]`, overwrites `version` and the `update` columns (default:
    every column of `row` but the key). Columns in `keep_when_null` keep the stored value when the
    incoming one is null. An equal or older version changes nothing.

        await upsert_if_newer(session, EligibleParticipant.__table__,
                              {"participant_id": pid, "version": 7, "status": "active", "updated_at": now},
                              key="participant_id")
    """
    statement = insert(table).values(**row)
    excluded = statement.excluded
    columns = [name for name in (update if update is not None else row) if name not in (key, "version")]
    set_: dict[str, Any] = {"version": excluded.version}
    for name in columns:
        set_[name] = func.coalesce(excluded[name], table.c[name]) if name in keep_when_null else excluded[name]
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[table.c[key]], set_=set_, where=table.c.version < excluded.version
        )
    )
