"""Schema management per service database with Alembic: each service keeps its revisions in
`services/<name>/migrations/versions/` (kernel tables included), `pena migrate` upgrades to head,
`pena migrations revision <service> -m ...` autogenerates the next one, and `pena migrations check`
(run in CI) fails when a service's models and its revisions disagree."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path
from typing import Any

import asyncpg
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import MetaData, inspect
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from pena.db import SCHEMA_LOCK, SQL_OBJECTS_LOCK, Database, create_schema, drop_database, ensure_database
from pena.definition import ServiceDefinition
from pena.settings import Settings
from pena.tables import AUDIT_APPEND_ONLY_SQL, KERNEL_METADATA, OUTBOX_NOTIFY_SQL

log = logging.getLogger("pena.migrate")
SCRIPT_LOCATION = Path(__file__).parent / "migrations"


def _config(definition: ServiceDefinition, connection: Connection | None = None) -> Config:
    assert definition.migrations is not None
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("version_locations", str(definition.migrations))
    cfg.set_main_option("path_separator", "os")
    cfg.attributes["target_metadata"] = _metadata(definition)
    cfg.attributes["connection"] = connection
    return cfg


def _metadata(definition: ServiceDefinition) -> list[MetaData]:
    return [KERNEL_METADATA, definition.metadata]


def _upgrade(definition: ServiceDefinition, connection: Connection) -> None:
    tables = set(inspect(connection).get_table_names())
    cfg = _config(definition, connection)
    if "alembic_version" not in tables and "outbox" in tables:
        # a database created before revisions existed (by create_all, maybe of older models): add the
        # tables it lacks, adopt it at head, and say what still differs (columns are not altered)
        for metadata in _metadata(definition):
            metadata.create_all(connection)
        command.stamp(cfg, "head")
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        drift = compare_metadata(context, _metadata(definition))  # type: ignore[arg-type]
        log.warning(
            "adopted an unversioned database at the current head",
            extra={"service": definition.name, "remaining_differences": [str(d)[:200] for d in drift][:20]},
        )
    command.upgrade(cfg, "head")


async def migrate(settings: Settings, definition: ServiceDefinition) -> None:
    """Creates the service database when missing and brings its schema to head (idempotent)."""
    await ensure_database(settings.service_database_url(definition.name))
    db = Database.for_service(settings, definition.name, null_pool=True)
    try:
        if definition.migrations is None:  # services without revisions (test doubles): plain create_all
            await create_schema(db, KERNEL_METADATA, definition.metadata)
        else:
            async with db.engine.begin() as conn:
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
                await conn.run_sync(lambda sync: _upgrade(definition, sync))
        async with db.engine.begin() as conn:
            await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SQL_OBJECTS_LOCK})")
            for statement in _split_sql(AUDIT_APPEND_ONLY_SQL + OUTBOX_NOTIFY_SQL):
                await conn.exec_driver_sql(statement)
    finally:
        await db.dispose()


def _split_sql(script: str) -> list[str]:
    # the function body contains ';' inside $$ ... $$: split on statement ends outside of it
    parts, current, in_body = [], [], False
    for line in script.strip().splitlines():
        current.append(line)
        in_body ^= line.count("$$") % 2 == 1
        if line.rstrip().endswith(";") and not in_body:
            parts.append("\n".join(current))
            current = []
    return parts


async def _with_scratch_database(settings: Settings, definition: ServiceDefinition, work: Any) -> Any:
    """Runs `work(sync_connection)` on a throwaway database upgraded to the current head."""
    url = settings.service_database_url(definition.name).rsplit("/", 1)[0] + f"/scratch_{uuid.uuid4().hex[:12]}"
    await ensure_database(url)
    db = Database(url, null_pool=True)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_config(definition, sync), "head"))
        async with db.engine.begin() as conn:
            return await conn.run_sync(work)
    finally:
        await db.dispose()
        await drop_database(url)


async def schema_drift(settings: Settings, definition: ServiceDefinition) -> list[Any]:
    """Differences between the models and the schema the revisions build (empty: in step)."""

    def compare(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = compare_metadata(context, _metadata(definition))  # type: ignore[arg-type]
        return list(diffs)

    return list(await _with_scratch_database(settings, definition, compare))


async def new_revision(settings: Settings, definition: ServiceDefinition, message: str) -> None:
    """Autogenerates the next revision from the difference between models and head."""
    assert definition.migrations is not None
    folder = Path(definition.migrations)
    revision_id = f"{definition.name[:4]}_{uuid.uuid4().hex[:8]}"

    def generate(connection: Connection) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        command.revision(_config(definition, connection), message=message, autogenerate=True, rev_id=revision_id)

    await _with_scratch_database(settings, definition, generate)


async def require_head(settings: Settings, definition: ServiceDefinition) -> None:
    """`pena serve --no-migrate` runs this instead of migrating at start: no DDL (the app's database role
    may lack the rights), only a check of the schema's revision. Behind (none, or an older revision this
    image knows): refuse to start, so a pod of a new release waits for that release's `pena migrate` (the
    Kubernetes Job). A revision this image does not know is a later release's (revisions are additive):
    start, so an old pod restarting during a rollout or a rollback still runs."""
    if definition.migrations is None:  # test doubles without revisions
        return
    cfg = Config()
    cfg.set_main_option("script_location", str(SCRIPT_LOCATION))
    cfg.set_main_option("version_locations", str(definition.migrations))
    cfg.set_main_option("path_separator", "os")
    script = ScriptDirectory.from_config(cfg)
    heads = set(script.get_heads())
    known = {revision.revision for revision in script.walk_revisions()}
    db = Database.for_service(settings, definition.name, null_pool=True)
    try:
        async with db.engine.connect() as conn:
            current = set(await conn.run_sync(lambda sync: MigrationContext.configure(sync).get_current_heads()))
    except DBAPIError as exc:
        if not isinstance(getattr(exc.orig, "__cause__", None), asyncpg.InvalidCatalogNameError):
            raise
        current = set()  # no database yet: behind like an empty one
    finally:
        await db.dispose()
    if current == heads:
        return
    if current and not current & known:
        log.warning(
            "the database is at a later release's revision; starting",
            extra={"service": definition.name, "revisions": sorted(current), "image_heads": sorted(heads)},
        )
        return
    raise RuntimeError(
        f"{definition.name}: the database is at revision {', '.join(sorted(current)) or 'none'}, this release "
        f"needs {', '.join(sorted(heads))}; run `pena migrate` (the release's migrate Job) first"
    )
