"""Read models fed by events: "the newer version wins".

A service that keeps a local copy of another service's facts (training's eligible participants,
monev's baselines, graduation's participant view) stores each row with the `version` its event
carried. Events may arrive twice or out of order, so a row only ever moves forward: the write is one
INSERT ... ON CONFLICT DO UPDATE ... WHERE stored.version < incoming.version, which is atomic under
concurrent deliveries and leaves the row untouched for an equal or older version.

`upsert_many_if_newer` writes a whole batch of events' rows (a consumer's fetched run) with one
statement per column set, unnested from one array per column: the same outcome as applying the rows
one by one in order (`upsert_if_newer` is that function for one row)."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, TextClause, bindparam, text
from sqlalchemy.dialects import postgresql
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
    await upsert_many_if_newer(session, table, [row], key=key, update=update, keep_when_null=keep_when_null)


async def upsert_many_if_newer(
    session: AsyncSession,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: str,
    update: Collection[str] | None = None,
    keep_when_null: Collection[str] = (),
) -> set[Any]:
    """`upsert_if_newer` for many rows in delivery order, set-based, with the same outcome as writing
    them one by one: a row whose version is not newer than an earlier row of the same key is dropped
    (one by one it would change nothing, whatever is stored); the rest of a key's rows have rising
    versions and are written in rounds (the first of every key, then the second, ...), one statement
    per round and column set (an event without a column leaves it alone, as one by one). A batch
    holding each key once (the usual case) is one statement. Returns the keys of the rows written."""
    newest: dict[Any, int] = {}
    rounds: list[dict[tuple[str, ...], list[Mapping[str, Any]]]] = []
    depth: dict[Any, int] = {}
    for row in rows:
        k, version = row[key], row["version"]
        if k in newest and version <= newest[k]:
            continue  # an older or equal version after a newer one in the same batch
        newest[k] = version
        level = depth.get(k, 0)
        depth[k] = level + 1
        if level == len(rounds):
            rounds.append({})
        rounds[level].setdefault(tuple(row), []).append(row)
    written: set[Any] = set()
    for round_ in rounds:
        for columns, same_columns in round_.items():
            updated = tuple(c for c in (update if update is not None else columns) if c not in (key, "version"))
            statement = _upsert_statement(table, columns, key, updated, tuple(sorted(keep_when_null)))
            params = {f"c{i}": [row[c] for row in same_columns] for i, c in enumerate(columns)}
            written.update((await session.execute(statement, params)).scalars())
    return written


@lru_cache(maxsize=128)
def _upsert_statement(
    table: Table, columns: tuple[str, ...], key: str, updated: tuple[str, ...], keep_when_null: tuple[str, ...]
) -> TextClause:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    casts = ", ".join(f"CAST(:c{i} AS {table.c[c].type.compile(dialect)}[])" for i, c in enumerate(columns))
    sets = ["version = EXCLUDED.version"] + [
        f"{c} = coalesce(EXCLUDED.{c}, {table.name}.{c})" if c in keep_when_null else f"{c} = EXCLUDED.{c}"
        for c in updated
    ]
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)}) SELECT * FROM unnest({casts})"  # noqa: S608 (table metadata)
        f" ON CONFLICT ({key}) DO UPDATE SET {', '.join(sets)} WHERE {table.name}.version < EXCLUDED.version"
        f" RETURNING {table.name}.{key}"
    )
    arrays = [postgresql.ARRAY(table.c[c].type, dimensions=1) for c in columns]
    return text(sql).bindparams(*(bindparam(f"c{i}", type_=array) for i, array in enumerate(arrays)))
