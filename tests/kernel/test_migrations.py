"""Every service's Alembic revisions build exactly the schema its models describe (CI fails on drift),
and migrating is idempotent."""

from __future__ import annotations

import pytest

from pena.cli import SERVICE_MODULES, load_definitions
from pena.db import drop_database
from pena.schema import migrate, schema_drift


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
