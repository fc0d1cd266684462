"""The storage lower bound of a bulk import (bench.bulk_import, issue 16 item 3): the rows the import
left in the service's database, copied out and COPYed into empty copies of the same tables in a
scratch schema, timed. That is what PostgreSQL itself must do for the same effects with no Python at
all (no validation, no encryption, no lookups, one COPY per table): no implementation of "same rules,
same rows, same events" can write them faster on this machine.

Each copy has the source table's columns, defaults, constraints and indexes (`LIKE ... INCLUDING ALL`),
its foreign keys (pointing at the scratch copies) and its triggers (the outbox's NOTIFY trigger).
Each table is also COPYed into a heap-only copy (no index, constraint, trigger or foreign key), so the
report splits a table's time into its heap and its indexes/checks/triggers. Outbox rows are copied as
the import wrote them (`published_at` NULL: the relay's later UPDATE is not the import's)."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg

SCHEMA = "storage_bound"
HEAP = "storage_bound_heap"
ONE_INDEX = "storage_bound_index"
# in foreign-key order: what the participants import writes for its rows (import_chunks are written
# and deleted again by the import's own machinery: not an effect)
TABLES = ("households", "participants", "participant_changes", "audit_log", "outbox", "import_runs", "import_errors")
UNPUBLISHED = {"outbox": {"published_at": "NULL"}}


@dataclass
class TableCopy:
    table: str
    rows: int
    indexes: int
    triggers: int
    foreign_keys: int
    seconds: float  # COPY into the full copy (indexes, constraints, foreign keys, triggers)
    heap_seconds: float  # COPY into the heap-only copy
    mib: float  # the full copy's size after the COPY, indexes included
    # with `per_index`: each index's name and what it adds to a heap-only COPY (`_per_index`)
    index_seconds: dict[str, float] = field(default_factory=dict)


async def _columns(conn: asyncpg.Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped"
        " AND attgenerated = '' ORDER BY attnum",
        f"public.{table}",
    )
    return [r["attname"] for r in rows]


async def _prepare(conn: asyncpg.Connection, tables: list[str]) -> dict[str, tuple[int, int]]:
    """The two scratch schemas with their empty tables; returns each table's trigger and foreign key
    counts."""
    triggers: dict[str, tuple[int, int]] = {}
    for schema in (SCHEMA, HEAP):
        await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}")
    for table in tables:
        await conn.execute(f"CREATE TABLE {SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL)")
        await conn.execute(f"CREATE TABLE {HEAP}.{table} (LIKE public.{table} INCLUDING DEFAULTS)")
    for table in tables:
        keys = 0
        for fk in await conn.fetch(
            "SELECT conname, pg_get_constraintdef(oid) AS def, confrelid::regclass::text AS target"
            " FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'f'",
            f"public.{table}",
        ):
            target = fk["target"].removeprefix("public.")
            if target not in tables:
                continue
            definition = fk["def"].replace(f"REFERENCES {fk['target']}(", f"REFERENCES {SCHEMA}.{target}(", 1)
            await conn.execute(f'ALTER TABLE {SCHEMA}.{table} ADD CONSTRAINT "{fk["conname"]}" {definition}')
            keys += 1
        found = await conn.fetch(
            "SELECT pg_get_triggerdef(oid) AS def FROM pg_trigger WHERE tgrelid = $1::regclass AND NOT tgisinternal",
            f"public.{table}",
        )
        for trigger in found:
            await conn.execute(re.sub(rf" ON (public\.)?{table} ", f" ON {SCHEMA}.{table} ", trigger["def"], count=1))
        triggers[table] = (len(found), keys)
    return triggers


async def _per_index(conn: asyncpg.Connection, table: str, data: Path, columns: list[str]) -> dict[str, float]:
    """Per index of `table`: the COPY's time into a heap-only copy carrying that index alone, less the
    time of a COPY into a heap-only copy with no index made just before it (paired: on a shared
    machine a COPY's time moves more between minutes than one index costs)."""
    found: dict[str, float] = {}
    indexes = await conn.fetch(
        "SELECT c.relname AS name, pg_get_indexdef(i.indexrelid) AS def FROM pg_index i"
        " JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass",
        f"public.{table}",
    )
    for index in indexes:
        timings = []
        for with_index in (False, True):
            await conn.execute(f"DROP SCHEMA IF EXISTS {ONE_INDEX} CASCADE; CREATE SCHEMA {ONE_INDEX}")
            await conn.execute(f"CREATE TABLE {ONE_INDEX}.{table} (LIKE public.{table} INCLUDING DEFAULTS)")
            if with_index:
                definition = re.sub(rf" ON (public\.)?{table} ", f" ON {ONE_INDEX}.{table} ", index["def"], count=1)
                await conn.execute(
                    definition.replace(f"INDEX {index['name']} ", f"INDEX {ONE_INDEX}_{index['name']} ", 1)
                )
            started = time.perf_counter()
            await conn.copy_to_table(table, source=data, schema_name=ONE_INDEX, columns=columns, format="binary")
            timings.append(time.perf_counter() - started)
        found[index["name"]] = timings[1] - timings[0]
    await conn.execute(f"DROP SCHEMA IF EXISTS {ONE_INDEX} CASCADE")
    return found


async def measure(dsn: str, directory: str, *, per_index: bool = False) -> list[TableCopy]:
    """Copies out what the import wrote, then times a binary COPY of each table into its scratch copy
    (full, then heap-only; with `per_index`, also into a heap-only copy with one of its indexes, for
    each index of a table that has more than two). The rows wait in binary COPY files in `directory`
    (1,000,000 rows' events do not fit in memory). The scratch schemas are dropped at the end."""
    conn = await asyncpg.connect(dsn)
    try:
        present = {
            r["relname"]
            for r in await conn.fetch("SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace")
        }
        tables = [t for t in TABLES if t in present]
        data: dict[str, Path] = {}
        for table in tables:
            columns = await _columns(conn, table)
            shown = ", ".join(UNPUBLISHED.get(table, {}).get(c, f'"{c}"') for c in columns)
            query = f"SELECT {shown} FROM public.{table}"  # noqa: S608 (names from the catalogue and TABLES)
            data[table] = Path(directory) / f"{table}.copy"
            await conn.copy_from_query(query, output=data[table], format="binary")
        triggers = await _prepare(conn, tables)
        await conn.execute("CHECKPOINT")  # the import's dirty pages are not this COPY's to write
        found: list[TableCopy] = []
        for table in tables:
            columns = await _columns(conn, table)
            timings = []
            for schema in (SCHEMA, HEAP):
                started = time.perf_counter()
                status = await conn.copy_to_table(
                    table, source=data[table], schema_name=schema, columns=columns, format="binary"
                )
                timings.append(time.perf_counter() - started)
            size = await conn.fetchval("SELECT pg_total_relation_size($1::regclass)", f"{SCHEMA}.{table}")
            indexes = await conn.fetchval(
                "SELECT count(*) FROM pg_index WHERE indrelid = $1::regclass", f"{SCHEMA}.{table}"
            )
            found.append(
                TableCopy(
                    table=table,
                    rows=int(status.split()[-1]),
                    indexes=indexes,
                    triggers=triggers[table][0],
                    foreign_keys=triggers[table][1],
                    seconds=timings[0],
                    heap_seconds=timings[1],
                    mib=size / 2**20,
                    index_seconds=await _per_index(conn, table, data[table], columns)
                    if per_index and indexes > 2
                    else {},
                )
            )
        return found
    finally:
        try:
            await conn.execute(
                f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE; DROP SCHEMA IF EXISTS {HEAP} CASCADE;"
                f" DROP SCHEMA IF EXISTS {ONE_INDEX} CASCADE"
            )
        finally:
            await conn.close()


def summary(copies: list[TableCopy]) -> str:
    """One line per table, the costliest first: rows, time (heap-only), indexes, triggers, size."""
    parts = [
        f"{c.table} {c.rows:,} rows {c.seconds:.2f}s (heap {c.heap_seconds:.2f}s; {c.indexes} indexes,"
        f" {c.triggers} triggers, {c.foreign_keys} foreign keys, {c.mib:.0f} MiB)"
        for c in sorted(copies, key=lambda c: -c.seconds)
    ]
    return "; ".join(parts)


def index_summary(copies: list[TableCopy]) -> str:
    """Per index (tables measured `per_index`), the costliest first: what it adds to a heap-only COPY."""
    costs = [(cost, f"{c.table}.{name}") for c in copies for name, cost in c.index_seconds.items()]
    return "; ".join(f"{name} +{cost:.2f}s" for cost, name in sorted(costs, reverse=True)) or "-"
