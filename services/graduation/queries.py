"""All SQL of the graduation service (reads, the reference-data upsert, the participant read model);
the use-case modules call these functions and never build statements themselves."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, delete, exists, func, literal, or_, select, text, tuple_
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import aliased
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.db import update_rows
from pena.readmodel import upsert_many_if_newer
from pena.reference.taxonomy import rolled_up
from services.graduation.models import (
    Appeal,
    Assessment,
    BatchView,
    Decision,
    MinimumWage,
    ParticipantView,
    Policy,
    PovertyLine,
    ReferenceName,
    RelapseCase,
)

# ------------------------------------------------------------------ locks


async def lock_key(session: AsyncSession, key: str) -> None:
    """Serialises work on one participant (or one policy sequence) for the rest of the transaction."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))


# ------------------------------------------------------------------ reference data


async def minimum_wage(session: AsyncSession, level: str, region_code: str, year: int) -> MinimumWage | None:
    return (
        await session.execute(
            select(MinimumWage).where(
                col(MinimumWage.level) == level,
                col(MinimumWage.region_code) == region_code,
                col(MinimumWage.year) == year,
            )
        )
    ).scalar_one_or_none()


async def poverty_line(session: AsyncSession, year: int) -> PovertyLine | None:
    return (await session.execute(select(PovertyLine).where(col(PovertyLine.year) == year))).scalar_one_or_none()


async def list_minimum_wages(
    session: AsyncSession, *, year: int | None, region_prefix: str | None
) -> list[MinimumWage]:
    query = select(MinimumWage)
    if year is not None:
        query = query.where(col(MinimumWage.year) == year)
    if region_prefix:
        query = query.where(col(MinimumWage.region_code).startswith(region_prefix))
    query = query.order_by(col(MinimumWage.year), col(MinimumWage.level), col(MinimumWage.region_code)).limit(5000)
    return list((await session.execute(query)).scalars().all())


async def list_poverty_lines(session: AsyncSession) -> list[PovertyLine]:
    return list((await session.execute(select(PovertyLine).order_by(col(PovertyLine.year)))).scalars().all())


ReferenceTable = type[MinimumWage] | type[PovertyLine]

REFERENCE_KEYS: dict[ReferenceTable, tuple[str, ...]] = {
    MinimumWage: ("level", "region_code", "year"),
    PovertyLine: ("year",),
}
REFERENCE_UPDATED = ("amount", "source", "is_example", "updated_at", "updated_by")


async def upsert_reference(session: AsyncSession, table: ReferenceTable, rows: list[dict[str, Any]]) -> None:
    """Inserts each reference row or, when its key (minimum wages: level, region, year; poverty lines:
    year) is held already, replaces its figure, source and example flag. Row by row, so the same key
    twice in one upload keeps the last row."""
    for values in rows:
        statement = pg_insert(table).values(**values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=list(REFERENCE_KEYS[table]),
                set_={k: statement.excluded[k] for k in REFERENCE_UPDATED},
            )
        )


async def reference_counts(session: AsyncSession) -> tuple[int, int]:
    wages = (await session.execute(select(func.count()).select_from(MinimumWage))).scalar_one()
    lines = (await session.execute(select(func.count()).select_from(PovertyLine))).scalar_one()
    return int(wages), int(lines)


# ------------------------------------------------------------------ policies


async def policy_in_force(session: AsyncSession, on: date) -> Policy | None:
    """The newest version effective on that date; before the first one, the first one."""
    found = (
        await session.execute(
            select(Policy)
            .where(col(Policy.effective_from) <= on)
            .order_by(col(Policy.effective_from).desc(), col(Policy.version).desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    if found is not None:
        return found
    return (await session.execute(select(Policy).order_by(col(Policy.version)).limit(1))).scalar_one_or_none()


async def latest_policy_version(session: AsyncSession) -> int:
    return int((await session.execute(select(func.coalesce(func.max(col(Policy.version)), 0)))).scalar_one())


async def list_policies(session: AsyncSession) -> list[Policy]:
    return list((await session.execute(select(Policy).order_by(col(Policy.version)))).scalars().all())


async def get_policy(session: AsyncSession, policy_id: str) -> Policy | None:
    return await session.get(Policy, policy_id)


# ------------------------------------------------------------------ participants read model


async def participant_view(session: AsyncSession, participant_id: str) -> ParticipantView | None:
    return await session.get(ParticipantView, participant_id, populate_existing=True)


async def apply_participant_facts(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Facts of a batch of events in delivery order, set-based. The newer version wins, keeping the
    stored region, status, household and KK token where the event carries none (events older than
    households; an erasure's event, whose token services/graduation/erasure.py then blanks); a row
    without a column (a status change carries no sex or birth year) leaves it as stored. An event of the
    same or an older version only fills a region still unknown (the first such event of a participant
    in the batch, as one by one: once a region is stored only a newer version changes it)."""
    table = ParticipantView.__table__  # type: ignore[attr-defined]
    written = await upsert_many_if_newer(
        session, table, rows, key="participant_id", keep_when_null=("region_code", "status", "household_id", "kk_token")
    )
    fills: dict[str, dict[str, Any]] = {}
    without_region: set[str] = set()
    for row in rows:
        if not row["region_code"]:
            without_region.add(row["participant_id"])
        elif row["participant_id"] not in fills:
            fills[row["participant_id"]] = {k: row[k] for k in ("participant_id", "region_code", "updated_at")}
    # a participant written from rows that all carry a region has one now: nothing to fill
    needed = [fill for pid, fill in fills.items() if pid not in written or pid in without_region]
    await update_rows(session, table, needed, key="participant_id", where="region_code IS NULL")


# ------------------------------------------------------------------ assessments


async def current_assessment(session: AsyncSession, participant_id: str) -> Assessment | None:
    return (
        await session.execute(
            select(Assessment)
            .where(col(Assessment.participant_id) == participant_id, col(Assessment.status) == "current")
            .with_for_update()
        )
    ).scalar_one_or_none()


async def assessment_for_submission(session: AsyncSession, task_id: str, submission_version: int) -> Assessment | None:
    return (
        await session.execute(
            select(Assessment).where(
                col(Assessment.monev_task_id) == task_id, col(Assessment.submission_version) == submission_version
            )
        )
    ).scalar_one_or_none()


async def get_assessment(session: AsyncSession, assessment_id: str, *, for_update: bool = False) -> Assessment | None:
    query = select(Assessment).where(col(Assessment.id) == assessment_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_assessments(
    session: AsyncSession,
    *,
    outcome: str | None,
    participant_id: str | None,
    region_prefix: str | None,
    status: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Assessment]:
    query = select(Assessment)
    if outcome:
        query = query.where(col(Assessment.outcome) == outcome)
    if participant_id:
        query = query.where(col(Assessment.participant_id) == participant_id)
    if region_prefix:
        query = query.where(col(Assessment.region_code).startswith(region_prefix))
    if status:
        query = query.where(col(Assessment.status) == status)
    return await _newest_first(session, query, Assessment, col(Assessment.assessed_at), after, limit)


# ------------------------------------------------------------------ decisions and appeals


async def decisions_for_assessment(session: AsyncSession, assessment_id: str) -> list[Decision]:
    return list(
        (
            await session.execute(
                select(Decision).where(col(Decision.assessment_id) == assessment_id).order_by(col(Decision.decided_at))
            )
        )
        .scalars()
        .all()
    )


async def get_decision(session: AsyncSession, decision_id: str, *, for_update: bool = False) -> Decision | None:
    query = select(Decision).where(col(Decision.id) == decision_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def list_decisions(
    session: AsyncSession,
    *,
    outcome: str | None,
    participant_id: str | None,
    region_prefix: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Decision]:
    query = select(Decision)
    if outcome:
        query = query.where(col(Decision.outcome) == outcome)
    if participant_id:
        query = query.where(col(Decision.participant_id) == participant_id)
    if region_prefix:
        query = query.where(col(Decision.region_code).startswith(region_prefix))
    return await _newest_first(session, query, Decision, col(Decision.decided_at), after, limit)


async def appeals_for_decision(session: AsyncSession, decision_id: str) -> list[Appeal]:
    return list(
        (
            await session.execute(
                select(Appeal).where(col(Appeal.decision_id) == decision_id).order_by(col(Appeal.filed_at))
            )
        )
        .scalars()
        .all()
    )


async def get_appeal(session: AsyncSession, appeal_id: str, *, for_update: bool = False) -> Appeal | None:
    query = select(Appeal).where(col(Appeal.id) == appeal_id)
    if for_update:
        query = query.with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


# ------------------------------------------------------------------ batches and names (read model)


async def upsert_batch_view(session: AsyncSession, batch: BatchView) -> None:
    table = BatchView.__table__  # type: ignore[attr-defined]
    row = {column.name: getattr(batch, column.name) for column in table.columns}
    statement = pg_insert(table).values(**row)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["batch_id"], set_={k: statement.excluded[k] for k in row if k != "batch_id"}
        )
    )


async def upsert_reference_names(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """(dimension, code) -> name, the last announcement wins."""
    if not rows:
        return
    statement = pg_insert(ReferenceName).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["dimension", "code"],
            set_={"name": statement.excluded.name, "updated_at": statement.excluded.updated_at},
        )
    )


async def reference_names(session: AsyncSession, dimension: str, codes: Collection[str]) -> dict[str, str]:
    if not codes:
        return {}
    rows = await session.execute(
        select(col(ReferenceName.code), col(ReferenceName.name)).where(
            col(ReferenceName.dimension) == dimension, col(ReferenceName.code).in_(list(codes))
        )
    )
    return {str(code): str(name) for code, name in rows.all()}


# ------------------------------------------------------------------ statistics

EFFECTIVE_OUTCOMES = ("approved", "rejected", "deferred")
# age at the as_of date -> group label (lower bound inclusive; None: open)
AGE_GROUPS: tuple[tuple[int | None, int | None, str], ...] = (
    (None, 25, "under_25"),
    (25, 35, "25_34"),
    (35, 45, "35_44"),
    (45, 55, "45_54"),
    (55, 65, "55_64"),
    (65, None, "65_plus"),
)


def _valid_on(decision: Any, business_timezone: str) -> Any:
    """The day a decision took effect: its effective date, else the business day it was made."""
    return func.coalesce(decision.effective_date, func.date(func.timezone(business_timezone, decision.decided_at)))


def _age_group(birth_year: Any, as_of: date) -> Any:
    age = literal(as_of.year) - birth_year
    whens = []
    for low, high, label in AGE_GROUPS:
        bounds = [age >= low] if low is not None else []
        if high is not None:
            bounds.append(age < high)
        whens.append((and_(*bounds), literal(label)))
    return case((birth_year.is_(None), literal(None)), *whens, else_=literal(None))


@dataclass(frozen=True)
class StatisticsRow:
    key: str | None
    bucket: str
    persons: int
    kpm: int  # distinct families (households)
    total: bool  # the bucket over all groups, not one group


async def statistics(
    session: AsyncSession,
    *,
    as_of: date,
    known_at: datetime,
    business_timezone: str,
    group_column: str | None,
    digits: int | None,
    region_prefix: str | None,
) -> list[StatisticsRow]:
    """Persons and families per (group key, bucket), and per bucket over all groups, on the valid date
    `as_of` as the system knew it at `known_at`.

    Valid time: an assessment holds from its visit date (the day the situation was measured), a
    decision from its effective date (else the business day it was made), a reversal from its own.
    Record time: only rows recorded (assessed_at, decided_at) at or before `known_at` exist; a
    correction of a survey (same task, higher submission version) replaces it only once recorded.
    Who is counted in which bucket reads no column that changes after insert, so those figures asked
    with a past `known_at` never change; grouping by sex or age and the family key come from the
    participant read model as it is now. `group_column` is one of the per-participant columns below (region codes cut to
    `digits`)."""
    a, d = Assessment, Decision
    correction = aliased(Assessment, name="correction")
    corrected = exists().where(
        col(correction.monev_task_id) == col(a.monev_task_id),
        col(correction.submission_version) > col(a.submission_version),
        col(correction.assessed_at) <= known_at,
    )
    current = (
        select(
            col(a.id),
            col(a.participant_id),
            col(a.outcome),
            col(a.region_code),
            col(a.centre_id),
            col(a.business_field),
            col(a.batch_id),
        )
        .where(col(a.assessed_at) <= known_at, col(a.visit_date) <= as_of, ~corrected)
        .order_by(
            col(a.participant_id), col(a.visit_date).desc(), col(a.monev_completed_at).desc(), col(a.assessed_at).desc()
        )
        .ext(distinct_on(col(a.participant_id)))
    )
    if region_prefix:
        current = current.where(col(a.region_code).startswith(region_prefix))
    cur = current.subquery("cur")
    reversal = aliased(Decision, name="reversal")
    reversed_by_then = exists().where(
        col(reversal.supersedes_decision_id) == col(d.id),
        col(reversal.outcome) == "reversed",
        col(reversal.decided_at) <= known_at,
        _valid_on(reversal, business_timezone) <= as_of,
    )
    in_force = and_(
        col(d.decided_at) <= known_at,
        col(d.outcome).in_(EFFECTIVE_OUTCOMES),
        _valid_on(d, business_timezone) <= as_of,
    )
    latest_decision = (
        select(col(d.participant_id), col(d.assessment_id), col(d.outcome), col(d.kind))
        .where(in_force, ~reversed_by_then)
        .order_by(col(d.participant_id), _valid_on(d, business_timezone).desc(), col(d.decided_at).desc())
        .ext(distinct_on(col(d.participant_id)))
        .subquery("dec")
    )
    # a decision on the current assessment, even one reversed since, means it is no longer "ready"
    decided_on_current = exists().where(col(d.assessment_id) == cur.c.id, in_force)
    bucket = case(
        (latest_decision.c.outcome == "approved", literal("graduated")),
        (
            and_(latest_decision.c.outcome.in_(("rejected", "deferred")), latest_decision.c.assessment_id == cur.c.id),
            latest_decision.c.outcome,
        ),
        (and_(cur.c.outcome == "ready", ~decided_on_current), literal("ready")),
        else_=literal(None),
    ).label("bucket")
    pv, bv = ParticipantView.__table__, BatchView.__table__  # type: ignore[attr-defined]
    columns: dict[str, Any] = {
        "region_code": cur.c.region_code,
        "centre_id": cur.c.centre_id,
        "business_field": rolled_up(cur.c.business_field),  # a sub-field counts in its field
        "method": bv.c.method,
        "sex": pv.c.sex,
        "age_group": _age_group(pv.c.birth_year, as_of),
        "kind": latest_decision.c.kind,
    }
    group_key: Any = literal(None) if group_column is None else columns[group_column]
    if digits is not None:
        group_key = func.left(group_key, digits)
    # the family: the registry's household; a participant whose household graduation has not heard of
    # (no participant event since households) counts as a family of its own
    family = func.coalesce(pv.c.household_id, literal("participant:") + cur.c.participant_id)
    per_participant = (
        select(group_key.label("group_key"), bucket, family.label("family"))
        .select_from(
            cur.outerjoin(latest_decision, latest_decision.c.participant_id == cur.c.participant_id)
            .outerjoin(pv, pv.c.participant_id == cur.c.participant_id)
            .outerjoin(bv, bv.c.batch_id == cur.c.batch_id)
        )
        .subquery("per_participant")
    )
    key, bucket_of = per_participant.c.group_key, per_participant.c.bucket
    rows = (
        await session.execute(
            select(
                key,
                bucket_of,
                func.count(),
                func.count(func.distinct(per_participant.c.family)),
                func.grouping(key),
            )
            .where(bucket_of.is_not(None))
            # per group, and per bucket over all groups: a family with members in two groups is one KPM
            .group_by(func.grouping_sets(tuple_(key, bucket_of), tuple_(bucket_of)))
            .order_by(key)
        )
    ).all()
    return [StatisticsRow(key=r[0], bucket=r[1], persons=int(r[2]), kpm=int(r[3]), total=bool(r[4])) for r in rows]


# ------------------------------------------------------------------ erasure of a participant (UU PDP)

# each statement changes only rows not erased yet, so a redelivered erasure writes nothing; criteria
# keep their name, threshold (the reference figure, not the family's) and result, and lose the
# family's value and the note
_ERASE_ASSESSMENTS = text(
    """
    UPDATE graduation_assessment AS a
    SET verification_notes = NULL,
        criteria = (
            SELECT coalesce(jsonb_agg(c || '{"value": null, "note": null}'::jsonb ORDER BY n), '[]'::jsonb)
            FROM jsonb_array_elements(a.criteria) WITH ORDINALITY AS t (c, n)
        )
    WHERE a.participant_id = :participant_id
      AND (a.verification_notes IS NOT NULL OR EXISTS (
            SELECT 1 FROM jsonb_array_elements(a.criteria) AS c
            WHERE c ->> 'value' IS NOT NULL OR c ->> 'note' IS NOT NULL))
    """
)
_ERASE_DECISIONS = text(
    "UPDATE graduation_decision SET reason = :erased WHERE participant_id = :participant_id AND reason <> :erased"
)
_ERASE_APPEALS = text(
    """
    UPDATE graduation_appeal SET grounds = :erased, resolution_reason = NULL
    WHERE participant_id = :participant_id AND (grounds <> :erased OR resolution_reason IS NOT NULL)
    """
)
_ERASE_VIEW = text(
    "UPDATE graduation_participant_view SET kk_token = NULL WHERE participant_id = :participant_id"
    " AND kk_token IS NOT NULL"
)


async def erase_participant(session: AsyncSession, participant_id: str, *, erased_text: str) -> dict[str, int]:
    """Blanks the participant's free text and figures in assessments, decisions and appeals, and the
    KK token in the read model; returns how many rows of each changed."""
    params = {"participant_id": participant_id, "erased": erased_text}
    counts = {}
    for name, statement in (
        ("assessments", _ERASE_ASSESSMENTS),
        ("decisions", _ERASE_DECISIONS),
        ("appeals", _ERASE_APPEALS),
        ("participant_view", _ERASE_VIEW),
    ):
        result = await session.execute(statement, params)
        counts[name] = int(result.rowcount or 0)  # type: ignore[attr-defined]
    return counts


# ------------------------------------------------------------------ relapse cases (mentoring visits)


async def relapse_case_for_task(session: AsyncSession, monev_task_id: str) -> RelapseCase | None:
    query = select(RelapseCase).where(col(RelapseCase.monev_task_id) == monev_task_id).with_for_update()
    return (await session.execute(query)).scalar_one_or_none()


async def get_relapse_case(session: AsyncSession, case_id: str) -> RelapseCase | None:
    return await session.get(RelapseCase, case_id)


async def list_relapse_cases(
    session: AsyncSession,
    *,
    status: str | None,
    participant_id: str | None,
    region_prefix: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[RelapseCase]:
    query = select(RelapseCase)
    if status:
        query = query.where(col(RelapseCase.status) == status)
    if participant_id:
        query = query.where(col(RelapseCase.participant_id) == participant_id)
    if region_prefix:
        query = query.where(col(RelapseCase.region_code).startswith(region_prefix))
    return await _newest_first(session, query, RelapseCase, col(RelapseCase.flagged_at), after, limit)


async def delete_relapse_cases(session: AsyncSession, participant_id: str) -> int:
    """Erasure: removes the participant's relapse cases; returns how many there were."""
    query = delete(RelapseCase).where(col(RelapseCase.participant_id) == participant_id).returning(col(RelapseCase.id))
    return len((await session.execute(query)).scalars().all())


async def _newest_first(
    session: AsyncSession, query: Any, model: Any, moment: Any, after: tuple[datetime, str] | None, limit: int
) -> list[Any]:
    """A list read newest first by (moment, id), one row more than `limit` (the keyset page tells
    whether there is a next page), starting after the cursor's (moment, id) when given."""
    if after:
        at, last_id = after
        query = query.where(or_(moment < at, and_(moment == at, col(model.id) < last_id)))
    query = query.order_by(moment.desc(), col(model.id).desc()).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())
