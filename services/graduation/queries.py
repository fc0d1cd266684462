"""All SQL of the graduation service (reads, the reference-data upsert, the participant read model);
the use-case modules call these functions and never build statements themselves."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, case, exists, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.readmodel import upsert_if_newer
from services.graduation.models import (
    Appeal,
    Assessment,
    Decision,
    MinimumWage,
    ParticipantView,
    Policy,
    PovertyLine,
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


async def apply_participant_facts(session: AsyncSession, facts: ParticipantView) -> None:
    """The newer version wins, keeping the stored region, status and household where the event carries
    none (events older than households); an event of the same or an older version only fills a region
    still unknown. The KK token is taken as the event carries it: an erasure's event carries none, and
    the token goes (services/graduation/erasure.py)."""
    table = ParticipantView.__table__  # type: ignore[attr-defined]
    row = {column.name: getattr(facts, column.name) for column in table.columns}
    keep = ("region_code", "status", "household_id") + (() if facts.status == "erased" else ("kk_token",))
    await upsert_if_newer(session, table, row, key="participant_id", keep_when_null=keep)
    if facts.region_code:
        await session.execute(
            update(table)
            .where(table.c.participant_id == facts.participant_id, table.c.region_code.is_(None))
            .values(region_code=facts.region_code, updated_at=facts.updated_at)
        )


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
    if after:
        at, last_id = after
        query = query.where(
            or_(
                col(Assessment.assessed_at) < at,
                and_(col(Assessment.assessed_at) == at, col(Assessment.id) < last_id),
            )
        )
    query = query.order_by(col(Assessment.assessed_at).desc(), col(Assessment.id).desc()).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


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
    if after:
        at, last_id = after
        query = query.where(
            or_(col(Decision.decided_at) < at, and_(col(Decision.decided_at) == at, col(Decision.id) < last_id))
        )
    query = query.order_by(col(Decision.decided_at).desc(), col(Decision.id).desc()).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


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


# ------------------------------------------------------------------ statistics

EFFECTIVE_OUTCOMES = ("approved", "rejected", "deferred")


async def statistics(
    session: AsyncSession,
    *,
    cutoff: datetime,
    group_by: str | None,
    region_prefix: str | None,
    region_digits: int,
) -> list[tuple[str | None, str, int]]:
    """(group key, bucket, count) as of `cutoff`: anything assessed, decided, superseded or reversed at
    or after the cutoff is ignored, so the answer for a past date does not drift."""
    a, d = Assessment, Decision
    current = (
        select(
            col(a.id),
            col(a.participant_id),
            col(a.outcome),
            col(a.region_code),
            col(a.centre_id),
            col(a.business_field),
        )
        .where(
            col(a.assessed_at) < cutoff,
            or_(col(a.superseded_at).is_(None), col(a.superseded_at) >= cutoff),
        )
        .order_by(col(a.participant_id), col(a.assessed_at).desc())
        .ext(distinct_on(col(a.participant_id)))
    )
    if region_prefix:
        current = current.where(col(a.region_code).startswith(region_prefix))
    cur = current.subquery("cur")
    latest_decision = (
        select(col(d.participant_id), col(d.assessment_id), col(d.outcome), col(d.kind))
        .where(
            col(d.decided_at) < cutoff,
            col(d.outcome).in_(EFFECTIVE_OUTCOMES),
            or_(col(d.reversed_at).is_(None), col(d.reversed_at) >= cutoff),
        )
        .order_by(col(d.participant_id), col(d.decided_at).desc())
        .ext(distinct_on(col(d.participant_id)))
        .subquery("dec")
    )
    decided_on_current = exists().where(
        col(d.assessment_id) == cur.c.id, col(d.decided_at) < cutoff, col(d.outcome).in_(EFFECTIVE_OUTCOMES)
    )
    bucket = case(
        (latest_decision.c.outcome == "approved", literal("graduated")),
        (
            and_(latest_decision.c.outcome.in_(("rejected", "deferred")), latest_decision.c.assessment_id == cur.c.id),
            latest_decision.c.outcome,
        ),
        (and_(cur.c.outcome == "ready", ~decided_on_current), literal("ready")),
        else_=literal(None),
    ).label("bucket")
    group_column: Any
    if group_by == "region":
        group_column = func.left(cur.c.region_code, region_digits)
    elif group_by == "centre":
        group_column = cur.c.centre_id
    elif group_by == "business_field":
        group_column = cur.c.business_field
    elif group_by == "kind":
        group_column = latest_decision.c.kind
    else:
        group_column = literal(None)
    per_participant = (
        select(group_column.label("group_key"), bucket)
        .select_from(cur.outerjoin(latest_decision, latest_decision.c.participant_id == cur.c.participant_id))
        .subquery("per_participant")
    )
    rows = (
        await session.execute(
            select(per_participant.c.group_key, per_participant.c.bucket, func.count())
            .where(per_participant.c.bucket.is_not(None))
            .group_by(per_participant.c.group_key, per_participant.c.bucket)
            .order_by(per_participant.c.group_key)
        )
    ).all()
    return [(r[0], r[1], int(r[2])) for r in rows]


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
