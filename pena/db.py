"""Async database access: one engine per service database, one commit-or-rollback per unit of work.

Use cases take a session and never commit; the request dependency, the consumer runner and the
scheduler each own exactly one transaction (`Database.transaction()`).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from functools import lru_cache
from typing import Any, TypeVar

import asyncpg
from sqlalchemy import (
    JSON,
    MetaData,
    Select,
    String,
    Table,
    TextClause,
    any_,
    bindparam,
    event,
    exc,
    func,
    insert,
    make_url,
    select,
    text,
)
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.orm.instrumentation import manager_of_class
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.settings import Settings

M = TypeVar("M")  # a table model class (detached)

# PostgreSQL advisory-lock keys (pg_advisory_xact_lock) of the kernel's start-up work on a service
# database; replicas start together, so one of them does each step while the others wait
SCHEMA_LOCK = 727274  # one schema writer (create_all, or Alembic's upgrade) per database at a time
SQL_OBJECTS_LOCK = 727275  # one installer of the audit and outbox triggers at a time
# 727276: pena.tables.OUTBOX_NOTIFY_LOCK (the outbox trigger's one notifier among concurrent writers)
SETTINGS_INFO = "pena_settings"


def settings_of(session: AsyncSession) -> Settings:
    """The settings of the service whose database this session belongs to (`Database.for_service`).
    Fails when the session's database was built without them: a kernel helper that needs a key or a
    lifetime must not guess one."""
    settings = session.info.get(SETTINGS_INFO)
    if not isinstance(settings, Settings):
        raise RuntimeError("this session's Database was built without settings (use Database.for_service)")
    return settings


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        max_overflow: int = 10,
        timeout: float = 5.0,
        null_pool: bool = False,
        settings: Settings | None = None,
    ) -> None:
        self.url = url
        self.settings = settings
        self.raw_pool_size = 1 if null_pool else pool_size + max_overflow
        self._timeout = timeout
        self._raw_pool: asyncpg.Pool | None = None
        self._raw_pool_lock = asyncio.Lock()
        kwargs: dict[str, object] = {"connect_args": {"timeout": timeout, "command_timeout": 60}}
        if null_pool:
            kwargs["poolclass"] = NullPool
        else:
            kwargs.update(pool_size=pool_size, max_overflow=max_overflow, pool_timeout=timeout)
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        # instead of pool_pre_ping, which asks the server on every checkout (BEGIN, ";", ROLLBACK:
        # three round trips per request); a restarted PostgreSQL still costs no request
        _replace_dead_connections(self.engine)
        # each session carries the service's settings: kernel helpers that take only a session (the
        # idempotency store's key and lifetime) read them with `settings_of`
        self.sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, expire_on_commit=False, info={SETTINGS_INFO: settings}
        )

    @classmethod
    def for_service(cls, settings: Settings, service: str, *, null_pool: bool = False) -> Database:
        return cls(
            settings.service_database_url(service),
            pool_size=settings.db_pool_size,
            max_overflow=settings.db_max_overflow,
            timeout=settings.db_timeout_seconds,
            null_pool=null_pool,
            settings=settings,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commits when the block ends normally, rolls back on any exception."""
        async with self.sessions() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    async def raw_pool(self) -> asyncpg.Pool:
        """asyncpg's own pool on this database, for a hot path that sends ONE statement (an implicit
        transaction of its own) without an ORM session: no autobegin, no BEGIN and COMMIT round trips,
        no SQLAlchemy statement processing (participants' registration). Created at first use, as large
        as the SQLAlchemy pool (connections open on demand), closed by `dispose()`. Statements through
        it are prepared once per connection (asyncpg's statement cache).

        Only for single statements, or a `connection.transaction()` block (the outbox relay's claim held
        across the publish), that leave no session state behind (no SET, LISTEN, session advisory lock,
        cursor or open transaction): a connection goes back to the pool without asyncpg's default reset
        query (`SELECT pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL`, one more round trip
        per use); asyncpg still rolls back a transaction left open."""
        if self._raw_pool is None:
            async with self._raw_pool_lock:
                if self._raw_pool is None:
                    url = make_url(self.url)
                    self._raw_pool = await asyncpg.create_pool(
                        user=url.username,
                        password=url.password,
                        host=url.host,
                        port=url.port,
                        database=url.database,
                        min_size=0,
                        max_size=self.raw_pool_size,
                        timeout=self._timeout,
                        command_timeout=60,
                        reset=_keep_session,
                    )
        return self._raw_pool

    async def raw_connection(self) -> asyncpg.Connection:
        """A dedicated asyncpg connection (for LISTEN), outside the pool."""
        url = make_url(self.url)
        return await asyncpg.connect(
            user=url.username, password=url.password, host=url.host, port=url.port, database=url.database
        )

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def dispose(self) -> None:
        if self._raw_pool is not None:
            pool, self._raw_pool = self._raw_pool, None
            await pool.close()
        await self.engine.dispose()


async def _keep_session(connection: asyncpg.Connection) -> None:
    """The raw pool's reset: nothing to undo (see `Database.raw_pool`)."""


IDLE_PING_SECONDS = 30.0


def _replace_dead_connections(engine: AsyncEngine) -> None:
    """At checkout, a pooled connection is replaced when it is dead: closed by the server (a restart
    terminates every backend; asyncpg sees the socket close, no round trip needed) or, after a long
    idle spell in which a firewall may have dropped it silently, failing a real ping."""
    dialect = engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def checked_in(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def checkout(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        if dbapi_connection.driver_connection.is_closed():
            raise exc.DisconnectionError("connection closed by the server")  # the pool connects afresh
        idle_since = record.info.get("checked_in_at")
        if idle_since is not None and time.monotonic() - idle_since > IDLE_PING_SECONDS:
            try:
                dialect.do_ping(dbapi_connection)
            except Exception as error:
                raise exc.DisconnectionError("connection failed its ping") from error


@lru_cache(maxsize=256)
def _unnest_insert(
    table: Table, columns: tuple[str, ...], skip_conflicts: bool, returning: str | None, same: frozenset[str]
) -> TextClause:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    varying = [c for c in columns if c not in same]
    casts = ", ".join(f"CAST(:c{columns.index(c)} AS {table.c[c].type.compile(dialect)}[])" for c in varying)
    values = ", ".join(
        f"CAST(:c{i} AS {table.c[c].type.compile(dialect)})" if c in same else f"u.{c}" for i, c in enumerate(columns)
    )
    sql = (
        f"INSERT INTO {table.name} ({', '.join(columns)})"  # noqa: S608 (table metadata)
        f" SELECT {values} FROM unnest({casts}) AS u({', '.join(varying)})"
    )
    if skip_conflicts:
        sql += " ON CONFLICT DO NOTHING"
    if returning:
        sql += f" RETURNING {returning}"
    # dimensions=1: one element per row, also when it is a JSON list (taken for a nested array otherwise)
    binds = [
        bindparam(f"c{i}", type_=table.c[c].type if c in same else postgresql.ARRAY(table.c[c].type, dimensions=1))
        for i, c in enumerate(columns)
    ]
    return text(sql).bindparams(*binds)


def _same_in_every_row(table: Table, columns: tuple[str, ...], values: list[list[Any]]) -> frozenset[str]:
    """The columns (JSON ones aside) holding one value in every row: sent once as a scalar rather than
    as an array of copies (the consumers' and the scheduler's batches repeat the consumer name, the
    event type, the status, the actor...; asyncpg encodes each array element). One column at least
    stays an array (it gives the row count)."""
    rows = len(values[0])
    same = [
        c
        for c, kind, column in zip(columns, _json_columns(table, columns), values, strict=True)
        if kind is None and column.count(column[0]) == rows
    ]
    return frozenset(same if len(same) < len(columns) else same[1:])


async def insert_rows(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    skip_conflicts: bool = False,
    returning: str | None = None,
) -> list[Any]:
    """Inserts many rows (same keys each) in one statement and one round trip: one array parameter
    per column, unnested by PostgreSQL (a column with one value in every row: that value, once). Much
    cheaper than per-row parameters for the batches the consumers and imports write. `skip_conflicts`
    drops rows that meet a unique constraint (also repeats within `rows`); `returning` names one
    column to return for the rows inserted."""
    if not rows:
        return []
    columns = tuple(rows[0])
    values = [[row[c] for row in rows] for c in columns]
    same = _same_in_every_row(table, columns, values)
    statement = _unnest_insert(table, columns, skip_conflicts, returning, same)
    params = {f"c{i}": values[i][0] if c in same else values[i] for i, c in enumerate(columns)}
    result = await session.execute(statement, params)
    return list(result.scalars()) if returning else []


COPY_MIN_ROWS = 500
"""From this many rows `copy_rows` is worth its own round trips (`insert_rows` below it)."""


async def copy_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """`insert_rows` for rows that cannot conflict (no ON CONFLICT, nothing returned), through
    PostgreSQL's COPY: asyncpg's binary `copy_records_to_table` on the session's own connection, in
    its transaction. Cheaper for the database and for Python than the unnest INSERT for large batches
    (the bulk import's history, audit and outbox rows: 5,000 a chunk); fewer than COPY_MIN_ROWS rows
    go through `insert_rows`. Triggers fire as for an INSERT (the outbox's statement trigger queues its
    NOTIFY). Values as `raw_values` sends them (JSON columns as JSON text); a failure is asyncpg's
    error, not SQLAlchemy's, and leaves the transaction failed like any other."""
    if len(rows) < COPY_MIN_ROWS:
        await insert_rows(session, table, rows)
        return
    columns = tuple(rows[0])
    connection = await session.connection()
    driver = (await connection.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection
    if not driver.is_in_transaction():
        # SQLAlchemy's asyncpg adapter opens the database transaction at its first statement: one
        # through the session, so the COPY is part of the transaction (and rolls back with it)
        await session.execute(text("SELECT 1"))
    records = [tuple(raw_values(table, row, columns)) for row in rows]
    await driver.copy_records_to_table(table.name, records=records, columns=list(columns), schema_name=table.schema)


@lru_cache(maxsize=128)
def _unnest_update(
    table: Table, columns: tuple[str, ...], key: str, where: str | None, returning: tuple[str, ...]
) -> TextClause:
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    casts = ", ".join(f"CAST(:c{i} AS {table.c[c].type.compile(dialect)}[])" for i, c in enumerate(columns))
    sets = ", ".join(f"{c} = u.{c}" for c in columns if c != key)
    sql = (
        f"UPDATE {table.name} SET {sets} FROM unnest({casts}) AS u({', '.join(columns)})"  # noqa: S608 (table metadata)
        f" WHERE {table.name}.{key} = u.{key}"
    )
    if where:
        sql += f" AND {table.name}.{where}"
    if returning:
        sql += " RETURNING " + ", ".join(f"{table.name}.{c}" for c in returning)
    arrays = [postgresql.ARRAY(table.c[c].type, dimensions=1) for c in columns]
    statement = text(sql).bindparams(*(bindparam(f"c{i}", type_=array) for i, array in enumerate(arrays)))
    return statement.columns(*(table.c[c] for c in returning)) if returning else statement  # type: ignore[return-value]


async def update_rows(
    session: AsyncSession,
    table: Table,
    rows: list[dict[str, Any]],
    *,
    key: str,
    where: str | None = None,
    returning: tuple[str, ...] = (),
) -> list[Any]:
    """Updates many rows (same keys each, `key` naming the row) in one statement and one round trip,
    the counterpart of `insert_rows`: `UPDATE ... FROM unnest(<one array per column>)`. `where` is a
    further condition on the stored row, written in SQL by the caller (a fixed string such as
    `"status = 'scheduled'"`, never data); `returning` names the columns to return, one row each
    for the rows updated. A key should appear once in `rows`."""
    if not rows:
        return []
    columns = tuple(rows[0])
    statement = _unnest_update(table, columns, key, where, returning)
    params = {f"c{i}": [row[c] for row in rows] for i, c in enumerate(columns)}
    result = await session.execute(statement, params)
    return list(result.all()) if returning else []


def any_of(name: str, values: Iterable[str]) -> Any:
    """`column == any_of("ids", ids)`: `= ANY(<one text[] parameter>)`, one bind for a chunk's
    thousands of ids. An expanding `IN` compiles and binds each value, and its statement text (so a
    prepared statement) changes with their number."""
    return any_(bindparam(name, sorted(values), type_=ARRAY(String)))


def detached(model: type[M], rows: Iterable[Any]) -> list[M]:
    """Table-model objects from selected rows (every column selected), not attached to a session: a
    set-based use case changes them in memory and writes them back in one statement (`update_rows`),
    never row by row through the ORM. Built as the ORM builds the objects it loads (the class
    manager's new instance, the values set directly), not through `__init__`, which validates and
    fires SQLAlchemy's init events: ~5 us a row instead of ~80-95, 16-20 % of the backfill imports'
    CPU (docs/benchmarks.md, "Backfill imports")."""
    manager = manager_of_class(model)
    found = []
    for row in rows:
        values = row._mapping
        instance = manager.new_instance()
        instance.__dict__.update(values)
        object.__setattr__(instance, "__pydantic_fields_set__", set(values))  # as after model(**values)
        found.append(instance)
    return found


@lru_cache(maxsize=256)
def raw_placeholders(table: Table, columns: tuple[str, ...], first: int) -> str:
    """`$n::type, ...` for `columns` of `table`, numbered from `first`: typed parameters for a raw
    (asyncpg) statement that selects its values instead of listing them in VALUES (a conditional
    `INSERT ... SELECT ... WHERE`). Strings are cast to text, not to varchar(n) (an explicit cast would
    truncate silently; the column's own length check applies on assignment)."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]

    def cast(column: str) -> str:
        kind = table.c[column].type
        return "text" if isinstance(kind, String) else str(kind.compile(dialect))

    return ", ".join(f"${first + i}::{cast(c)}" for i, c in enumerate(columns))


def raw_values(table: Table, row: Mapping[str, Any], columns: tuple[str, ...]) -> list[Any]:
    """`row`'s values for `columns` as asyncpg takes them for `raw_placeholders`: JSON columns as
    JSON text (`json.dumps`, SQLAlchemy's default serialiser; the raw pool has no JSON codec; None
    as JSON null unless the column says `none_as_null`, as SQLAlchemy stores it), the others as they
    are."""
    return [
        row[c] if kind is None or (kind and row[c] is None) else json.dumps(row[c])
        for c, kind in zip(columns, _json_columns(table, columns), strict=True)
    ]


@lru_cache(maxsize=256)
def _json_columns(table: Table, columns: tuple[str, ...]) -> tuple[bool | None, ...]:
    """Per column: None when not JSON, else its `none_as_null`."""
    return tuple(bool(kind.none_as_null) if isinstance(kind := table.c[c].type, JSON) else None for c in columns)


Companions = tuple[tuple[Table, tuple[str, ...]], ...]


@lru_cache(maxsize=64)
def _insert_unless_conflict(
    table: Table, columns: tuple[str, ...], conflict: str, companions: Companions
) -> Select[Any]:
    new = (
        postgresql.insert(table)
        .values({c: bindparam(f"r_{c}", type_=table.c[c].type) for c in columns})
        .on_conflict_do_nothing(index_elements=[table.c[conflict]])
        .returning(table.c[conflict])
        .cte("new")
    )
    statement = select(func.count()).select_from(new)
    for i, (other, other_columns) in enumerate(companions):
        values = select(*(bindparam(f"c{i}_{c}", type_=other.c[c].type) for c in other_columns)).select_from(new)
        statement = statement.add_cte(insert(other).from_select(list(other_columns), values).cte(f"c{i}"))
    return statement


async def insert_unless_conflict(
    session: AsyncSession,
    table: Table,
    row: dict[str, Any],
    *,
    conflict: str,
    companions: list[tuple[Table, dict[str, Any]]],
) -> bool:
    """Inserts `row` unless it meets the unique index on column `conflict` (ON CONFLICT DO NOTHING,
    which waits for a concurrent insert of the same key to commit or roll back), and the companion
    rows (history, audit, outbox...) only with it: all or none, in one statement and one round trip
    (data-modifying CTEs). Returns whether the row was inserted; the transaction stays usable."""
    shape = tuple((other, tuple(values)) for other, values in companions)
    statement = _insert_unless_conflict(table, tuple(row), conflict, shape)
    params = {f"r_{c}": value for c, value in row.items()}
    for i, (_, values) in enumerate(companions):
        params.update({f"c{i}_{c}": value for c, value in values.items()})
    return bool((await session.execute(statement, params)).scalar_one())


async def ensure_database(url: str) -> bool:
    """Creates the database named in the URL when missing. Returns True when it was created."""
    parsed = make_url(url)
    admin = await asyncpg.connect(
        user=parsed.username, password=parsed.password, host=parsed.host, port=parsed.port, database="postgres"
    )
    try:
        exists = await admin.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", parsed.database)
        if exists:
            return False
        try:
            await admin.execute(f'CREATE DATABASE "{parsed.database}"')
        except (asyncpg.DuplicateDatabaseError, asyncpg.UniqueViolationError):
            # another process created it first: seen as duplicate_database, or, when both passed the
            # existence check at once, as a unique violation on pg_database's name index
            return False
        return True
    finally:
        await admin.close()


async def drop_database(url: str) -> None:
    parsed = make_url(url)
    admin = await asyncpg.connect(
        user=parsed.username, password=parsed.password, host=parsed.host, port=parsed.port, database="postgres"
    )
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{parsed.database}" WITH (FORCE)')
    finally:
        await admin.close()


async def create_schema(db: Database, *metadatas: MetaData) -> None:
    """Creates kernel and service tables (idempotent). Serialised by an advisory lock so several
    replicas starting at once do not race on CREATE TABLE."""
    async with db.engine.begin() as conn:
        await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({SCHEMA_LOCK})")
        for metadata in metadatas:
            await conn.run_sync(metadata.create_all)
