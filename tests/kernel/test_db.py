"""Kernel database helpers against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, func, inspect, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

from pena import db as db_module
from pena.db import (
    Database,
    copy_rows,
    create_schema,
    detached,
    drop_database,
    ensure_database,
    insert_rows,
    insert_unless_conflict,
    update_rows,
)

meta = MetaData()
keyed = Table("keyed", meta, Column("id", Integer, primary_key=True), Column("key", String(20), unique=True))
companion = Table("companion", meta, Column("id", Integer, primary_key=True), Column("note", String(20)))


async def test_insert_unless_conflict_writes_the_companions_only_with_the_row(settings) -> None:
    url = settings.service_database_url("kerneldb")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    try:
        await create_schema(db, meta)
        async with db.transaction() as session:
            first = await insert_unless_conflict(
                session, keyed, {"id": 1, "key": "a"}, conflict="key", companions=[(companion, {"id": 1, "note": "x"})]
            )
            again = await insert_unless_conflict(
                session, keyed, {"id": 2, "key": "a"}, conflict="key", companions=[(companion, {"id": 2, "note": "y"})]
            )
            # the conflict left the transaction usable: it goes on and commits
            other = await insert_unless_conflict(
                session, keyed, {"id": 3, "key": "b"}, conflict="key", companions=[(companion, {"id": 3, "note": "z"})]
            )
        assert (first, again, other) == (True, False, True)
        async with db.transaction() as session:
            notes = (await session.execute(select(companion.c.note).order_by(companion.c.id))).scalars().all()
            count = (await session.execute(select(func.count()).select_from(keyed))).scalar_one()
        assert notes == ["x", "z"]
        assert count == 2
    finally:
        await db.dispose()
        await drop_database(url)


async def test_a_pooled_connection_the_server_closed_is_replaced_without_a_failed_request(settings) -> None:
    """What pool_pre_ping did, without its round trips: backends terminated (as by a restart) are
    noticed at checkout and replaced, so the next unit of work succeeds."""
    import asyncio

    url = settings.service_database_url("kerneldb")
    await ensure_database(url)
    db = Database(url, pool_size=2, max_overflow=0)
    try:
        async with db.transaction() as session:
            pid = (await session.execute(select(func.pg_backend_pid()))).scalar_one()
        admin = await db.raw_connection()
        try:
            assert await admin.fetchval("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        await asyncio.sleep(0.2)  # the server's goodbye reaches the pooled connection's socket
        async with db.transaction() as session:
            assert (await session.execute(select(func.pg_backend_pid()))).scalar_one() != pid
    finally:
        await db.dispose()
        await drop_database(url)


documents = Table(
    "documents",
    meta,
    Column("id", Integer, primary_key=True),
    Column("name", String(20), unique=True),
    Column("tags", JSONB, nullable=True),
    Column("at", DateTime(timezone=True), nullable=True),
)


async def test_insert_rows_keeps_json_values_whole_and_stays_in_the_transaction(settings) -> None:
    """JSON lists stay one value per row (not a nested array), dicts and a JSON null round-trip, a
    conflict is skipped with skip_conflicts, `returning` gives the inserted rows only, and the rows
    are written in the caller's transaction (gone after a rollback)."""
    url = settings.service_database_url("kerneldb")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    at = datetime(2026, 1, 31, 17, 30, tzinfo=UTC)
    rows = [
        {"id": 1, "name": "a", "tags": ["x", "y"], "at": at},
        {"id": 2, "name": "b", "tags": {"k": [1, 2], "s": "é"}, "at": None},
        {"id": 3, "name": "c", "tags": [], "at": at},
        {"id": 4, "name": "d", "tags": None, "at": at},
    ]
    try:
        await create_schema(db, meta)
        async with db.transaction() as session:
            assert await insert_rows(session, documents, []) == []
            assert sorted(await insert_rows(session, documents, rows, returning="id")) == [1, 2, 3, 4]
            again = [{"id": 5, "name": "a", "tags": [], "at": at}, {"id": 6, "name": "e", "tags": ["z"], "at": at}]
            assert await insert_rows(session, documents, again, skip_conflicts=True, returning="name") == ["e"]
        with pytest.raises(RuntimeError):  # noqa: PT012 - the raise inside the transaction is the point
            async with db.transaction() as session:
                await insert_rows(session, documents, [{"id": 7, "name": "f", "tags": ["w"], "at": at}])
                raise RuntimeError("rolled back")
        with pytest.raises(IntegrityError):
            async with db.transaction() as session:
                await insert_rows(session, documents, [{"id": 8, "name": "a", "tags": [], "at": at}])
        async with db.transaction() as session:
            stored = (await session.execute(select(documents).order_by(documents.c.id))).all()
            kinds = (
                await session.execute(select(func.jsonb_typeof(documents.c.tags)).order_by(documents.c.id))
            ).scalars()
            assert list(kinds) == ["array", "object", "array", "null", "array"]  # None is stored as JSON null
        assert [tuple(r) for r in stored] == [
            (1, "a", ["x", "y"], at),
            (2, "b", {"k": [1, 2], "s": "é"}, None),
            (3, "c", [], at),
            (4, "d", None, at),
            (6, "e", ["z"], at),
        ]
    finally:
        await db.dispose()
        await drop_database(url)


async def test_copy_rows_stores_what_insert_rows_stores_in_the_transaction(settings, monkeypatch) -> None:
    """COPY (from COPY_MIN_ROWS rows) keeps JSON lists, dicts and JSON null as insert_rows does, writes in
    the caller's transaction (gone after a rollback), and fires the table's statement trigger."""
    url = settings.service_database_url("kernelcopy")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    at = datetime(2026, 1, 31, 17, 30, tzinfo=UTC)
    monkeypatch.setattr(db_module, "COPY_MIN_ROWS", 3)
    rows = [
        {"id": 1, "name": "a", "tags": ["x", "y"], "at": at},
        {"id": 2, "name": "b", "tags": {"k": [1, 2], "s": "é"}, "at": None},
        {"id": 3, "name": "c", "tags": [], "at": at},
        {"id": 4, "name": "d", "tags": None, "at": at},
    ]
    listener = await db.raw_connection()
    heard: list[str] = []
    try:
        await create_schema(db, meta)
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION copy_test_notify() RETURNS trigger LANGUAGE plpgsql AS $$"
                " BEGIN PERFORM pg_notify('copy_test', ''); RETURN NULL; END $$;"
            )
            await conn.exec_driver_sql(
                "CREATE TRIGGER copy_test AFTER INSERT ON documents"
                " FOR EACH STATEMENT EXECUTE FUNCTION copy_test_notify()"
            )
        await listener.add_listener("copy_test", lambda *args: heard.append(args[2]))
        with pytest.raises(RuntimeError):  # noqa: PT012 - the raise inside the transaction is the point
            async with db.transaction() as session:
                await copy_rows(session, documents, rows)
                raise RuntimeError("rolled back")
        async with db.transaction() as session:
            await copy_rows(session, documents, rows[:2])  # below the minimum: insert_rows
            await copy_rows(session, documents, rows[2:] + [{"id": 5, "name": "e", "tags": ["z"], "at": at}])
        async with db.transaction() as session:
            stored = (await session.execute(select(documents).order_by(documents.c.id))).all()
            kinds = (
                await session.execute(select(func.jsonb_typeof(documents.c.tags)).order_by(documents.c.id))
            ).scalars()
            assert list(kinds) == ["array", "object", "array", "null", "array"]
        assert [tuple(r) for r in stored] == [*(tuple(r.values()) for r in rows), (5, "e", ["z"], at)]
        for _ in range(50):
            if heard:
                break
            await asyncio.sleep(0.05)
        assert heard == ["copy_test"]  # one NOTIFY per transaction (deduplicated), the rolled back one none
    finally:
        await listener.close()
        await db.dispose()
        await drop_database(url)


async def test_insert_rows_sends_a_value_shared_by_every_row_once_and_stores_it_in_each(settings) -> None:
    """A column holding one value in every row (here `at`, then `at` and `name` NULL) goes as one
    scalar instead of an array of copies; every row still gets it, and the JSON column stays per row."""
    url = settings.service_database_url("kerneldbsame")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    at = datetime(2026, 2, 1, 8, 0, tzinfo=UTC)
    try:
        await create_schema(db, meta)
        async with db.transaction() as session:
            shared = [{"id": i, "name": f"n{i}", "tags": {"same": True}, "at": at} for i in range(1, 4)]
            assert sorted(await insert_rows(session, documents, shared, returning="id")) == [1, 2, 3]
            nulls = [{"id": i, "name": None, "tags": None, "at": None} for i in range(4, 6)]
            assert sorted(await insert_rows(session, documents, nulls, returning="id")) == [4, 5]
        async with db.transaction() as session:
            stored = (await session.execute(select(documents).order_by(documents.c.id))).all()
            kinds = list(
                (await session.execute(select(func.jsonb_typeof(documents.c.tags)).order_by(documents.c.id))).scalars()
            )
        assert [tuple(r) for r in stored] == [
            (1, "n1", {"same": True}, at),
            (2, "n2", {"same": True}, at),
            (3, "n3", {"same": True}, at),
            (4, None, None, None),
            (5, None, None, None),
        ]
        assert kinds == ["object", "object", "object", "null", "null"]  # JSON null, as before
    finally:
        await db.dispose()
        await drop_database(url)


async def test_concurrent_creation_of_one_database_creates_it_once_without_an_error(settings) -> None:
    """Migrate jobs and services starting together (compose, Kubernetes) race to create the database."""
    url = settings.service_database_url("racedb")
    try:
        created = await asyncio.gather(*(ensure_database(url) for _ in range(8)))
        assert created.count(True) == 1
        assert created.count(False) == 7
    finally:
        await drop_database(url)


notes_registry = registry()


class NotesBase(SQLModel, registry=notes_registry):
    pass


class Note(NotesBase, table=True):
    __tablename__ = "notes"
    id: str = Field(primary_key=True, max_length=10)
    status: str = Field(max_length=10)
    count: int = 0
    at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


async def test_detached_objects_are_those_the_constructor_makes_and_stay_out_of_the_session(settings) -> None:
    """`detached` builds from selected rows what `Note(**row)` builds (same values, same fields set),
    not attached to the session: changing one writes nothing until `update_rows` writes it."""
    url = settings.service_database_url("kerneldetached")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    at = datetime(2026, 1, 31, 17, 30, tzinfo=UTC)
    table = Note.__table__  # type: ignore[attr-defined]
    try:
        await create_schema(db, notes_registry.metadata)
        async with db.transaction() as session:
            await insert_rows(
                session,
                table,
                [
                    {"id": "a", "status": "new", "count": 1, "at": at},
                    {"id": "b", "status": "new", "count": 2, "at": None},
                ],
            )
        async with db.transaction() as session:
            rows = (await session.execute(select(table).order_by(table.c.id))).all()
            notes = detached(Note, rows)
            expected = [Note(**row._mapping) for row in rows]
            assert [n.model_dump() for n in notes] == [e.model_dump() for e in expected]
            assert [n.model_fields_set for n in notes] == [e.model_fields_set for e in expected]
            assert all(inspect(n).transient and n not in session for n in notes)
            notes[0].status, notes[0].count = "done", 5  # instrumented attributes still set
            assert (notes[0].status, notes[0].count, notes[0].at) == ("done", 5, at)
            await session.flush()
            assert (await session.execute(select(table.c.status).where(table.c.id == "a"))).scalar_one() == "new"
            await update_rows(
                session, table, [{"id": n.id, "status": n.status, "count": n.count} for n in notes], key="id"
            )
        async with db.transaction() as session:
            stored = (
                await session.execute(select(table.c.id, table.c.status, table.c.count).order_by(table.c.id))
            ).all()
        assert [tuple(r) for r in stored] == [("a", "done", 5), ("b", "new", 2)]
    finally:
        await db.dispose()
        await drop_database(url)
