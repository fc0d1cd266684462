"""Every service's Alembic revisions build exactly the schema its models describe (CI fails on drift),
and migrating is idempotent."""

from __future__ import annotations

import pytest

from composition.catalog import SERVICE_MODULES, load_definitions
from pena.db import drop_database
from pena.migrate import migrate, schema_drift


@pytest.mark.parametrize("service", list(SERVICE_MODULES))
async def test_revisions_match_the_models(settings, service) -> None:
    definition = load_definitions([service])[0]
    assert definition.migrations is not None, f"{service} has no Alembic revisions"
    assert await schema_drift(settings, definition) == []


async def test_migrate_twice_is_a_no_op(settings) -> None:
    definition = load_definitions(["training"])[0]
    try:
        await migrate(settings, definition)
        await migrate(settings, definition)
    finally:
        await drop_database(settings.service_database_url("training"))


async def test_a_database_made_before_revisions_is_adopted_with_its_missing_tables(settings) -> None:
    """A dev database created by create_all when a service had fewer tables is brought to head."""
    from sqlalchemy import inspect

    from pena.db import Database, create_schema, ensure_database
    from pena.tables import KERNEL_METADATA

    definition = load_definitions(["participants"])[0]
    url = settings.service_database_url("participants")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    try:
        await create_schema(db, KERNEL_METADATA)  # only the kernel tables, no alembic_version
        await migrate(settings, definition)
        async with db.engine.connect() as conn:
            tables = set(await conn.run_sync(lambda sync: inspect(sync).get_table_names()))
        assert {"participants", "regions", "alembic_version", "outbox"} <= tables
        assert await schema_drift(settings, definition) == []
        await migrate(settings, definition)  # and again: now a plain upgrade to head
    finally:
        await db.dispose()
        await drop_database(url)
