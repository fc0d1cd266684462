"""The newer-wins read-model upsert (pena.readmodel) against a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, select

from pena.db import Database, create_schema, drop_database, ensure_database
from pena.readmodel import upsert_if_newer

meta = MetaData()
facts = Table(
    "facts",
    meta,
    Column("participant_id", String(20), primary_key=True),
    Column("version", Integer, nullable=False),
    Column("status", String(20)),
    Column("region_code", String(10)),
    Column("updated_at", DateTime(timezone=True)),
)
T1, T2, T3 = (datetime(2026, 1, d, tzinfo=UTC) for d in (1, 2, 3))


async def test_only_a_newer_version_moves_the_row_and_nulls_can_keep_the_stored_value(settings) -> None:
    url = settings.service_database_url("readmodel")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    try:
        await create_schema(db, meta)

        async def put(row: dict[str, object], **options: Any) -> None:
            async with db.transaction() as session:
                await upsert_if_newer(session, facts, {"participant_id": "p-1", **row}, key="participant_id", **options)

        async def stored() -> tuple[object, ...]:
            async with db.transaction() as session:
                return tuple((await session.execute(select(facts).where(facts.c.participant_id == "p-1"))).one())

        await put({"version": 2, "status": "active", "region_code": "3201011001", "updated_at": T1})
        assert await stored() == ("p-1", 2, "active", "3201011001", T1)
        # equal and older versions change nothing
        await put({"version": 2, "status": "exited", "region_code": "9999999999", "updated_at": T2})
        await put({"version": 1, "status": "exited", "region_code": "9999999999", "updated_at": T2})
        assert await stored() == ("p-1", 2, "active", "3201011001", T1)
        # a newer version without a region keeps the stored one when asked to
        await put(
            {"version": 3, "status": "graduated", "region_code": None, "updated_at": T2},
            keep_when_null=("region_code",),
        )
        assert await stored() == ("p-1", 3, "graduated", "3201011001", T2)
        # `update` limits the columns written; by default a null overwrites
        await put(
            {"version": 4, "status": None, "region_code": None, "updated_at": T3}, update=("status", "updated_at")
        )
        assert await stored() == ("p-1", 4, None, "3201011001", T3)
    finally:
        await db.dispose()
        await drop_database(url)
