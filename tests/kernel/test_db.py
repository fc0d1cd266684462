"""Kernel database helpers against a real PostgreSQL."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, String, Table, func, select

from pena.db import Database, create_schema, drop_database, ensure_database, insert_unless_conflict

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
