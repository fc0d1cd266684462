"""All SQL of the participants service (docs/kernel.md, "Conventions"): every SELECT, the INSERTs of
registration and bulk import, and the region reference upsert. Use cases call these; routes never do."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import asyncpg
from sqlalchemy import String, any_, bindparam, cast, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.db import copy_rows, insert_rows, insert_unless_conflict, raw_placeholders, raw_values
from pena.tables import audit_log, outbox
from services.participants.models import (
    Household,
    Participant,
    ParticipantChange,
    Region,
)


@dataclass(frozen=True)
class ParticipantFilter:
    region_prefix: str | None = None  # the caller's filter
    unit_prefix: str | None = None  # the caller's unit scope ("" = all)
    status: str | None = None
    business_field: str | None = None
    programme: str | None = None
    dtsen_decile: int | None = None
    flagged: bool | None = None


async def participant_by_id(
    session: AsyncSession, participant_id: str, *, for_update: bool = False
) -> Participant | None:
    statement = select(Participant).where(col(Participant.id) == participant_id)
    if for_update:
        statement = statement.with_for_update()
    return (await session.execute(statement)).scalars().first()


async def participant_by_nik_token(session: AsyncSession, token: str) -> Participant | None:
    return (await session.execute(select(Participant).where(col(Participant.nik_token) == token))).scalars().first()


async def existing_nik_tokens(session: AsyncSession, tokens: list[str]) -> set[str]:
    if not tokens:
        return set()
    # one array parameter: thousands of tokens (an import chunk) without thousands of bind parameters
    statement = select(col(Participant.nik_token)).where(
        col(Participant.nik_token) == any_(bindparam("tokens", tokens, type_=ARRAY(String)))
    )
    return {t for t in (await session.execute(statement)).scalars().all() if t}


@dataclass(frozen=True)
class RegistrationChecks:
    known_regions: frozenset[str]  # those of the asked codes that are known
    holder_id: str | None  # the participant who holds the NIK token already
    twin_id: str | None  # the first participant with the same name and birth date but another NIK


_NIK_TOKEN = bindparam("nik_token", type_=String)
# built once: the statements of every registration differ in their parameters only
_REGISTRATION_CHECKS = select(
    select(func.array_agg(col(Region.code)))
    .where(col(Region.code) == any_(bindparam("codes", type_=ARRAY(String))))
    .scalar_subquery(),
    select(col(Participant.id)).where(col(Participant.nik_token) == _NIK_TOKEN).scalar_subquery(),
    select(col(Participant.id))
    .where(col(Participant.identity_hash) == bindparam("identity_hash", type_=String))
    .where(col(Participant.nik_token) != _NIK_TOKEN)
    .order_by(col(Participant.created_at), col(Participant.id))
    .limit(1)
    .scalar_subquery(),
)


async def registration_checks(
    session: AsyncSession, *, region_codes: list[str], nik_token: str, identity_hash: str
) -> RegistrationChecks:
    """What a registration looks up before it writes, in one round trip: which of `region_codes` are
    known, who holds the NIK token, and the possible duplicate (as `possible_duplicate`)."""
    known, holder, twin = (
        await session.execute(
            _REGISTRATION_CHECKS, {"codes": region_codes, "nik_token": nik_token, "identity_hash": identity_hash}
        )
    ).one()
    return RegistrationChecks(frozenset(known or ()), holder, twin)


_PARTICIPANTS = Participant.__table__  # type: ignore[attr-defined]
_CHANGES = ParticipantChange.__table__  # type: ignore[attr-defined]


async def insert_if_new_nik(
    session: AsyncSession,
    values: dict[str, Any],
    *,
    change: dict[str, Any],
    audit: dict[str, Any],
    event: dict[str, Any],
) -> bool:
    """Inserts a participant (column values) with its history row, audit entry and outbox event in
    one statement, unless its NIK token is taken: then nothing is written and False returned, also
    when a concurrent registration took it (the insert waits for that one's commit). The transaction
    stays usable either way, so no savepoint is needed."""
    return await insert_unless_conflict(
        session,
        _PARTICIPANTS,
        values,
        conflict="nik_token",
        companions=[(_CHANGES, change), (audit_log, audit), (outbox, event)],
    )


# ------------------------------------------------------------------ registration in one statement


@dataclass(frozen=True)
class Registration:
    """What the one registration statement did and saw (all in one snapshot)."""

    inserted: bool  # the participant and its history, audit and outbox rows were written
    known_regions: frozenset[str]  # those of the asked codes that are known
    holder_id: str | None  # the participant who held the NIK token already
    holder_region: str | None  # ... and its region (whether a 409 may name it)
    twin_id: str | None  # the possible duplicate stored in the new row (same name and birth date)


# set by the statement itself from the `twin` lookup, not sent as parameters
_TWIN_COLUMNS = ("possible_duplicate_of", "flagged")
_AUDIT_DETAILS = "details"


@lru_cache(maxsize=16)
def _registration_statement(
    columns: tuple[str, ...], changes: tuple[str, ...], audits: tuple[str, ...], events: tuple[str, ...]
) -> str:
    """$1 the distinct region codes validation looks up, $2 the NIK token, $3 the identity hash, $4-$6
    the new household's id, KK token and time, then the participant's, the history row's, the audit
    row's and the outbox row's columns. The insert happens only when every asked code is known, no
    participant holds the NIK token and the family is new (its household is created here; a household
    that exists, or one a concurrent registration is creating, makes ON CONFLICT write nothing: the
    caller takes the session path, which locks the household and applies the per-KPM limit). ON
    CONFLICT (nik_token) covers a concurrent registration of the same NIK (it waits for that one's
    commit and writes nothing, so neither do the companion CTEs, which insert one row per row of `new`)."""
    first = 7
    participant = raw_placeholders(_PARTICIPANTS, columns, first)
    first += len(columns)
    change = raw_placeholders(_CHANGES, changes, first)
    first += len(changes)
    audit = raw_placeholders(audit_log, audits, first)
    first += len(audits)
    event = raw_placeholders(outbox, events, first)
    return f"""
        WITH known AS (
            SELECT coalesce(array_agg(code), '{{}}') AS codes FROM regions WHERE code = ANY($1::text[])
        ), holder AS (
            SELECT id, region_code FROM participants WHERE nik_token = $2::text
        ), twin AS (
            SELECT id FROM participants WHERE identity_hash = $3::text AND nik_token != $2::text
            ORDER BY created_at, id LIMIT 1
        ), family AS (
            INSERT INTO households (id, kk_token, created_at, updated_at)
            SELECT $4::text, $5::text, $6::timestamptz, $6::timestamptz
            WHERE NOT EXISTS (SELECT FROM holder)
              AND (SELECT cardinality(codes) FROM known) = cardinality($1::text[])
            ON CONFLICT (kk_token) DO NOTHING
            RETURNING id
        ), new AS (
            INSERT INTO participants ({", ".join(columns)}, {", ".join(_TWIN_COLUMNS)})
            SELECT {participant}, (SELECT id FROM twin), EXISTS (SELECT FROM twin)
            WHERE EXISTS (SELECT FROM family)
            ON CONFLICT (nik_token) DO NOTHING
            RETURNING id
        ), history AS (
            INSERT INTO participant_changes ({", ".join(changes)}) SELECT {change} FROM new
        ), audit AS (
            INSERT INTO audit_log ({", ".join(audits)}, {_AUDIT_DETAILS})
            SELECT {audit}, jsonb_build_object('flagged_possible_duplicate', EXISTS (SELECT FROM twin)) FROM new
        ), event AS (
            INSERT INTO outbox ({", ".join(events)}) SELECT {event} FROM new
        )
        SELECT EXISTS (SELECT FROM new) AS inserted, (SELECT codes FROM known) AS known,
               (SELECT id FROM holder) AS holder_id, (SELECT region_code FROM holder) AS holder_region,
               (SELECT id FROM twin) AS twin_id
    """  # noqa: S608 (column names from table metadata and the use case's own dicts)


async def register_in_one_statement(
    pool: asyncpg.Pool,
    *,
    region_codes: list[str],
    nik_token: str,
    identity_hash: str,
    values: dict[str, Any],
    change: dict[str, Any],
    audit: dict[str, Any],
    event: dict[str, Any],
) -> Registration:
    """A registration's lookups and writes in ONE statement on the raw pool (an implicit transaction
    of its own: one round trip instead of BEGIN, SELECT, INSERT, COMMIT): which region codes are known,
    who holds the NIK token, the possible duplicate (stored in the row: `possible_duplicate_of`,
    `flagged`, and the audit row's details), and, only when the codes are all known and the NIK is
    free, the participant with its history row, audit entry and outbox event. `values` etc. are the
    column values `insert_if_new_nik` takes; their twin columns and the audit details are the
    statement's own."""
    columns = tuple(c for c in values if c not in _TWIN_COLUMNS)
    changes = tuple(change)
    audits = tuple(c for c in audit if c != _AUDIT_DETAILS)
    events = tuple(event)
    codes = list(dict.fromkeys(region_codes))
    row = await pool.fetchrow(
        _registration_statement(columns, changes, audits, events),
        codes,
        nik_token,
        identity_hash,
        values["household_id"],
        values["kk_token"],
        values["created_at"],
        *raw_values(_PARTICIPANTS, values, columns),
        *raw_values(_CHANGES, change, changes),
        *raw_values(audit_log, audit, audits),
        *raw_values(outbox, event, events),
    )
    assert row is not None  # a SELECT without FROM returns exactly one row
    return Registration(
        inserted=row["inserted"],
        known_regions=frozenset(row["known"]),
        holder_id=row["holder_id"],
        holder_region=row["holder_region"],
        twin_id=row["twin_id"],
    )


async def possible_duplicate(session: AsyncSession, *, identity_hash: str, nik_token: str) -> Participant | None:
    """Someone else (another NIK) with the same name and birth date."""
    statement = (
        select(Participant)
        .where(col(Participant.identity_hash) == identity_hash, col(Participant.nik_token) != nik_token)
        .order_by(col(Participant.created_at), col(Participant.id))
        .limit(1)
    )
    return (await session.execute(statement)).scalars().first()


async def list_participants(
    session: AsyncSession, *, filters: ParticipantFilter, after: tuple[datetime, str] | None, limit: int
) -> list[Participant]:
    """limit + 1 rows in (created_at, id) order: the extra one says whether there is a next page."""
    statement = select(Participant)
    for prefix in (filters.unit_prefix, filters.region_prefix):
        if prefix:
            statement = statement.where(col(Participant.region_code).startswith(prefix, autoescape=True))
    if filters.status:
        statement = statement.where(col(Participant.status) == filters.status)
    if filters.business_field:
        statement = statement.where(col(Participant.business_field) == filters.business_field)
    if filters.programme:
        statement = statement.where(col(Participant.assistance_programmes).op("@>")(cast([filters.programme], JSONB)))
    if filters.dtsen_decile is not None:
        statement = statement.where(col(Participant.dtsen_decile) == filters.dtsen_decile)
    if filters.flagged is not None:
        statement = statement.where(col(Participant.flagged) == filters.flagged)
    if after is not None:
        statement = statement.where(tuple_(col(Participant.created_at), col(Participant.id)) > tuple_(*after))
    statement = statement.order_by(col(Participant.created_at), col(Participant.id)).limit(limit + 1)
    return list((await session.execute(statement)).scalars().all())


async def changes_of(session: AsyncSession, participant_id: str) -> list[ParticipantChange]:
    statement = (
        select(ParticipantChange)
        .where(col(ParticipantChange.participant_id) == participant_id)
        .order_by(col(ParticipantChange.version), col(ParticipantChange.id))
    )
    return list((await session.execute(statement)).scalars().all())


async def region_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(Region))).scalar_one())


async def region_codes(session: AsyncSession) -> list[str]:
    """The province and regency codes (552 of the 91,599 rows): what validation checks prefixes against."""
    statement = select(col(Region.code)).where(func.length(col(Region.code)) <= 4)
    return list((await session.execute(statement)).scalars().all())


# set-based: one array per column, unnested by PostgreSQL (91,599 rows in one round trip); rows whose
# name, level and version are unchanged are not rewritten, so a repeated import writes nothing
_UPSERT_REGIONS = text(
    """
    WITH written AS (
        INSERT INTO regions (code, name, level, version)
        SELECT * FROM unnest(CAST(:codes AS varchar[]), CAST(:names AS varchar[]),
                             CAST(:levels AS varchar[]), CAST(:versions AS varchar[]))
        ON CONFLICT (code) DO UPDATE
            SET name = excluded.name, level = excluded.level, version = excluded.version
            WHERE (regions.name, regions.level, regions.version)
                  IS DISTINCT FROM (excluded.name, excluded.level, excluded.version)
        RETURNING 1
    )
    SELECT count(*) FROM written
    """
)


async def upsert_regions(session: AsyncSession, rows: Sequence[Mapping[str, str]]) -> int:
    """Inserts or updates region codes (keys code, name, level, version); returns how many rows were
    new or changed."""
    if not rows:
        return 0
    params = {
        "codes": [r["code"] for r in rows],
        "names": [r["name"] for r in rows],
        "levels": [r["level"] for r in rows],
        "versions": [r["version"] for r in rows],
    }
    return int((await session.execute(_UPSERT_REGIONS, params)).scalar_one())


async def lock_regions(session: AsyncSession) -> None:
    """Serialises region loads until the transaction ends (two replicas starting on one empty
    database: the second waits, then finds the rows)."""
    await session.execute(text("SELECT pg_advisory_xact_lock(hashtext('participants.regions'))"))


async def copy_regions(session: AsyncSession, rows: Sequence[Mapping[str, str]]) -> int:
    """Loads region codes into an EMPTY table with COPY (the startup path: a fresh database gets the
    91,599 rows several times faster than through the upsert); returns how many."""
    connection = await (await session.connection()).get_raw_connection()
    records = [(r["code"], r["name"], r["level"], r["version"]) for r in rows]
    await connection.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        "regions", records=records, columns=["code", "name", "level", "version"]
    )
    return len(records)


async def region_version_loaded(session: AsyncSession, version: str) -> bool:
    """Whether any region row carries `version` (the startup hook's once-per-database check)."""
    statement = select(col(Region.code)).where(col(Region.version) == version).limit(1)
    return (await session.execute(statement)).first() is not None


async def list_regions(session: AsyncSession, *, prefix: str | None, limit: int) -> list[Region]:
    statement = select(Region)
    if prefix:
        statement = statement.where(col(Region.code).startswith(prefix, autoescape=True))
    return list((await session.execute(statement.order_by(col(Region.code)).limit(limit))).scalars().all())


# ------------------------------------------------------------------ bulk registration (the import)


async def identity_holders(session: AsyncSession, identity_hashes: list[str]) -> dict[str, list[tuple[str, str]]]:
    """identity hash -> [(NIK token, participant id)] of the stored participants with that name and
    birth date, oldest first (the order `possible_duplicate` picks from)."""
    if not identity_hashes:
        return {}
    statement = (
        select(col(Participant.identity_hash), col(Participant.nik_token), col(Participant.id))
        .where(col(Participant.identity_hash) == any_(bindparam("hashes", identity_hashes, type_=ARRAY(String))))
        .order_by(col(Participant.created_at), col(Participant.id))
    )
    holders: dict[str, list[tuple[str, str]]] = {}
    for identity, token, participant_id in (await session.execute(statement)).all():
        holders.setdefault(identity, []).append((token, participant_id))
    return holders


async def insert_new_participants(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Inserts participants (column values) in one statement, skipping those whose NIK token is taken
    (also by a concurrent registration: the insert waits for its commit). Returns the inserted ids."""
    table = Participant.__table__  # type: ignore[attr-defined]
    return set(await insert_rows(session, table, rows, skip_conflicts=True, returning="id"))


async def insert_changes(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    await copy_rows(session, ParticipantChange.__table__, rows)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ households (KPM)

# one row per KK token, created or touched (`updated_at`) in token order: ON CONFLICT DO UPDATE locks
# each household row until the transaction ends, so concurrent registrations of members of one family
# take their turn and each counts the members the previous one committed
_LOCK_HOUSEHOLDS = text(
    """
    INSERT INTO households (id, kk_token, created_at, updated_at)
    SELECT id, kk_token, CAST(:now AS timestamptz), CAST(:now AS timestamptz)
    FROM unnest(CAST(:ids AS varchar[]), CAST(:tokens AS varchar[])) AS new (id, kk_token)
    ORDER BY kk_token
    ON CONFLICT (kk_token) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING kk_token, id
    """
)


async def lock_households(
    session: AsyncSession, tokens: Sequence[str], *, ids: Sequence[str], now: datetime
) -> dict[str, str]:
    """The household of each KK token (`ids`: the ids new households get, one per token), created where
    missing and locked until the transaction ends. Returns KK token -> household id."""
    if not tokens:
        return {}
    rows = await session.execute(_LOCK_HOUSEHOLDS, {"ids": list(ids), "tokens": list(tokens), "now": now})
    return {str(token): str(household_id) for token, household_id in rows.all()}


async def active_members(
    session: AsyncSession, household_ids: Sequence[str], *, statuses: Sequence[str]
) -> dict[str, list[tuple[str, str, str | None]]]:
    """household id -> [(participant id, region code, NIK token)] of its members in `statuses`, oldest
    first."""
    if not household_ids:
        return {}
    statement = (
        select(
            col(Participant.household_id), col(Participant.id), col(Participant.region_code), col(Participant.nik_token)
        )
        .where(col(Participant.household_id) == any_(bindparam("households", list(household_ids), type_=ARRAY(String))))
        .where(col(Participant.status).in_(list(statuses)))
        .order_by(col(Participant.created_at), col(Participant.id))
    )
    members: dict[str, list[tuple[str, str, str | None]]] = {}
    for household_id, participant_id, region, token in (await session.execute(statement)).all():
        members.setdefault(household_id, []).append((participant_id, region, token))
    return members


async def household_by_id(session: AsyncSession, household_id: str) -> Household | None:
    return await session.get(Household, household_id)


async def household_members(session: AsyncSession, household_id: str) -> list[Participant]:
    statement = (
        select(Participant)
        .where(col(Participant.household_id) == household_id)
        .order_by(col(Participant.created_at), col(Participant.id))
    )
    return list((await session.execute(statement)).scalars().all())


async def forget_household_token(session: AsyncSession, household_id: str, now: datetime) -> None:
    """Blanks the household's KK token when no member of it keeps personal data (all erased)."""
    remaining = (
        select(col(Participant.id))
        .where(col(Participant.household_id) == household_id, col(Participant.status) != "erased")
        .exists()
    )
    table = Household.__table__  # type: ignore[attr-defined]
    await session.execute(
        update(table).where(table.c.id == household_id, ~remaining).values(kk_token=None, updated_at=now)
    )
