"""All SQL of the monev service (the convention of docs/kernel.md: use cases call these functions; no
statement is written anywhere else in the package, migrations aside)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, Integer, String, and_, bindparam, case, func, literal, or_, select, text, update
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import array as pg_array
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.db import any_of, copy_rows, detached, update_rows
from pena.readmodel import upsert_many_if_newer
from pena.reference.taxonomy import rolled_up
from services.monev.models import BaselineParticipant, FacilitatorRegion, MonevSurvey, MonevTask
from services.monev.schemas import TaskFilter

OPEN_STATUSES = ("scheduled", "due", "overdue")
CAME_DUE = ("due", "overdue", "done")


async def task_by_id(session: AsyncSession, task_id: str, *, for_update: bool = False) -> MonevTask | None:
    query = select(MonevTask).where(col(MonevTask.id) == task_id)
    if for_update:
        # serialises survey submissions, assignment and the due/overdue jobs of one task
        query = query.with_for_update()
    return (await session.execute(query)).scalars().first()


async def move_tasks(session: AsyncSession, rows: list[dict[str, Any]], *, from_status: str) -> list[Any]:
    """Writes the given columns (among them the new `status`) of the tasks still in `from_status`, in
    one statement (each row holds `id` and the same columns); the due and overdue jobs. Returns
    (id, participant_id, wave, kind, due_at, overdue_at) of each task moved; the others are left alone."""
    table = MonevTask.__table__  # type: ignore[attr-defined]
    if from_status not in OPEN_STATUSES:
        raise ValueError(f"not an open status: {from_status!r}")
    returning = ("id", "participant_id", "wave", "kind", "due_at", "overdue_at")
    return await update_rows(session, table, rows, key="id", where=f"status = '{from_status}'", returning=returning)


def _json_time(column: str) -> str:
    """SQL writing a timestamptz `column` as an event's JSON time: ISO 8601 in UTC with microseconds,
    e.g. "2026-03-01T12:00:30.000000Z" (the contracts read it back as the same instant)."""
    return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


# the due pass in one statement (a CTE chain, as the bare loop): the tasks still scheduled turn
# due, and for each one moved its overdue job, its monev.due event and its audit row are written. The
# envelope's constant part comes from the kernel (`pena.outbox.envelope_template`), the audit row's from
# `pena.audit.audit_row`; only the per-task values are filled in here.
_ANNOUNCE_DUE = text(
    f"""
WITH moved AS (
    UPDATE monev_tasks t SET status = 'due', announced_at = :now, updated_at = :now, overdue_at = u.overdue_at
    FROM unnest(CAST(:ids AS text[]), CAST(:overdue_at AS timestamptz[])) AS u(id, overdue_at)
    WHERE t.id = u.id AND t.status = 'scheduled'
    RETURNING t.id, t.participant_id, t.wave, t.kind, t.due_at, t.overdue_at
), overdue_jobs AS (
    INSERT INTO scheduled_jobs (kind, job_key, due_at, payload)
    SELECT :job_kind, :job_key_prefix || id, overdue_at, jsonb_build_object('task_id', id) FROM moved
    ON CONFLICT DO NOTHING
), events AS (
    SELECT moved.*, gen_random_uuid()::text AS event_id FROM moved
), outbox_rows AS (
    INSERT INTO outbox (event_id, event_name, message_key, envelope)
    SELECT event_id, :event_name, participant_id, CAST(:envelope AS jsonb) || jsonb_build_object(
        'id', event_id, 'subject', participant_id,
        'data', jsonb_build_object('task_id', id, 'participant_id', participant_id, 'wave', wave, 'kind', kind,
                                   'due_at', {_json_time("due_at")}))
    FROM events
), audits AS (
    INSERT INTO audit_log (actor, client_id, roles, unit, action, subject_type, subject_id, purpose, outcome,
                           request_id, correlation_id, details)
    SELECT :actor, :client_id, :roles, :unit, :action, :subject_type, id, :purpose, :outcome,
           :request_id, :correlation_id, jsonb_build_object('wave', wave)
    FROM moved
)
SELECT id, due_at FROM moved
"""  # noqa: S608 (a fixed SQL expression)
).bindparams(
    bindparam("ids", type_=ARRAY(String)),
    bindparam("overdue_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("envelope", type_=JSONB),
)


async def announce_due_tasks(
    session: AsyncSession,
    overdue_at: dict[str, datetime],
    *,
    now: datetime,
    job: dict[str, str],
    event: tuple[str, dict[str, Any]],
    audit: dict[str, Any],
) -> list[tuple[str, datetime]]:
    """The due pass of the tasks in `overdue_at` (task id -> its overdue time) still scheduled, in one
    statement: status, times, overdue job (`job`: kind and key prefix), event (`event`: name and envelope
    template) and audit row (`audit`: the `audit_row` of the pass, subject and details filled per task).
    Returns (id, due_at) of each task moved; the others are left alone."""
    audit_values = {k: v for k, v in audit.items() if k not in ("subject_id", "details")}
    result = await session.execute(
        _ANNOUNCE_DUE,
        {
            "ids": list(overdue_at),
            "overdue_at": list(overdue_at.values()),
            "now": now,
            "job_kind": job["kind"],
            "job_key_prefix": job["key_prefix"],
            "event_name": event[0],
            "envelope": event[1],
            **audit_values,
        },
    )
    return [(row[0], row[1]) for row in result.all()]


async def set_overdue_times(session: AsyncSession, overdue_at: dict[str, datetime], *, job_key_prefix: str) -> None:
    """Corrects the overdue time of due tasks and of their overdue jobs (a task announced before its
    due time counts its grace period from the due time)."""
    await session.execute(
        text(
            """
WITH u AS (SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:overdue_at AS timestamptz[])) AS u(id, overdue_at)),
tasks AS (UPDATE monev_tasks t SET overdue_at = u.overdue_at FROM u WHERE t.id = u.id AND t.status = 'due')
UPDATE scheduled_jobs j SET due_at = u.overdue_at FROM u
WHERE j.job_key = :job_key_prefix || u.id AND j.done_at IS NULL
"""
        ).bindparams(
            bindparam("ids", type_=ARRAY(String)), bindparam("overdue_at", type_=ARRAY(DateTime(timezone=True)))
        ),
        {"ids": list(overdue_at), "overdue_at": list(overdue_at.values()), "job_key_prefix": job_key_prefix},
    )


# new tasks with their due jobs, `monev.scheduled` events and audit rows in one statement (a CTE chain,
# like the due pass): only the tasks inserted (not meeting a unique index: a redelivered completion or
# decision) get the others. The envelope's constant part comes from the kernel (`envelope_template`),
# the audit row's from `audit_row`; per task the event's own context (correlation, causation, trace) is
# passed in, and its id (`gen_random_uuid()`), subject and data are filled in here.
_TASK_COLUMNS = (
    "id, participant_id, batch_id, centre_id, business_field, region_code, wave, kind, decision_id,"
    " training_completed_at, due_at, assignee"
)
_CREATE_TASKS = text(
    f"""
WITH u AS (
    SELECT * FROM unnest(CAST(:ids AS text[]), CAST(:participant_ids AS text[]), CAST(:batch_ids AS text[]),
        CAST(:centre_ids AS text[]), CAST(:business_fields AS text[]), CAST(:region_codes AS text[]),
        CAST(:waves AS text[]), CAST(:kinds AS text[]), CAST(:decision_ids AS text[]),
        CAST(:completed_at AS timestamptz[]), CAST(:due_at AS timestamptz[]), CAST(:assignees AS text[]),
        CAST(:correlation_ids AS text[]), CAST(:causation_ids AS text[]), CAST(:traceparents AS text[]))
    AS u({_TASK_COLUMNS}, correlation_id, causation_id, traceparent)
), created AS (
    INSERT INTO monev_tasks ({_TASK_COLUMNS}, status, assigned_by, submission_version, created_at, updated_at)
    SELECT {_TASK_COLUMNS}, 'scheduled', CASE WHEN assignee IS NOT NULL THEN :assigned_by END, 0, :now, :now
    FROM u
    ON CONFLICT DO NOTHING
    RETURNING id
), new AS (
    SELECT u.*, gen_random_uuid()::text AS event_id FROM created JOIN u USING (id)
), jobs AS (
    INSERT INTO scheduled_jobs (kind, job_key, due_at, payload)
    SELECT :job_kind, :job_key_prefix || id, due_at, jsonb_build_object('task_id', id) || CAST(:job_payload AS jsonb)
    FROM new
    ON CONFLICT DO NOTHING
), outbox_rows AS (
    INSERT INTO outbox (event_id, event_name, message_key, envelope)
    SELECT event_id, :event_name, participant_id, CAST(:envelope AS jsonb)
        || jsonb_strip_nulls(jsonb_build_object(
            'correlationid', correlation_id, 'causationid', causation_id, 'traceparent', traceparent))
        || jsonb_build_object('id', event_id, 'subject', participant_id, 'data', jsonb_build_object(
            'task_id', id, 'participant_id', participant_id, 'batch_id', batch_id, 'wave', wave,
            'training_completed_at',
            {_json_time("training_completed_at")},
            'due_at', {_json_time("due_at")}, 'kind', kind))
    FROM new
), audits AS (
    INSERT INTO audit_log (actor, client_id, roles, unit, action, subject_type, subject_id, purpose, outcome,
                           request_id, correlation_id, details)
    SELECT :actor, :client_id, :roles, :unit, :action, :subject_type, id, :purpose, :outcome, :request_id,
           correlation_id, jsonb_build_object('wave', wave, 'kind', kind, 'auto_assigned', assignee IS NOT NULL)
    FROM new
)
SELECT id FROM created
"""  # noqa: S608 (fixed column names)
).bindparams(
    *(
        bindparam(name, type_=ARRAY(String))
        for name in (
            "ids",
            "participant_ids",
            "batch_ids",
            "centre_ids",
            "business_fields",
            "region_codes",
            "waves",
            "kinds",
            "decision_ids",
            "assignees",
            "correlation_ids",
            "causation_ids",
            "traceparents",
        )
    ),
    bindparam("completed_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("due_at", type_=ARRAY(DateTime(timezone=True))),
    bindparam("job_payload", type_=JSONB),
    bindparam("envelope", type_=JSONB),
)

TaskContext = tuple[str | None, str | None, str | None]
"""The context a task's event and audit row are written in: correlation, causation and trace ids."""


async def create_tasks(
    session: AsyncSession,
    rows: list[dict[str, Any]],
    contexts: list[TaskContext],
    *,
    now: datetime,
    assigned_by: str,
    job: dict[str, Any],
    event: tuple[str, dict[str, Any]],
    audit: dict[str, Any],
) -> set[str]:
    """Inserts the tasks (`rows`: the columns of `_TASK_COLUMNS` each; scheduled, version 0, created
    `now`) in one statement; a task that exists for (participant, batch, wave) or (decision, wave)
    meets its unique index and is skipped. For each task inserted, in the same statement: its due job
    (`job`: kind, key prefix and the payload besides the task id), its event (`event`: name and
    envelope template; context from `contexts`, one per row) and its audit row (`audit`: the `audit_row`
    of the batch; correlation id from the task's context). Returns the ids inserted."""
    if not rows:
        return set()
    audit_values = {k: v for k, v in audit.items() if k not in ("subject_id", "details", "correlation_id")}
    params: dict[str, Any] = {
        "ids": [r["id"] for r in rows],
        "participant_ids": [r["participant_id"] for r in rows],
        "batch_ids": [r["batch_id"] for r in rows],
        "centre_ids": [r["centre_id"] for r in rows],
        "business_fields": [r["business_field"] for r in rows],
        "region_codes": [r["region_code"] for r in rows],
        "waves": [r["wave"] for r in rows],
        "kinds": [r["kind"] for r in rows],
        "decision_ids": [r["decision_id"] for r in rows],
        "completed_at": [r["training_completed_at"] for r in rows],
        "due_at": [r["due_at"] for r in rows],
        "assignees": [r["assignee"] for r in rows],
        "correlation_ids": [c[0] for c in contexts],
        "causation_ids": [c[1] for c in contexts],
        "traceparents": [c[2] for c in contexts],
        "now": now,
        "assigned_by": assigned_by,
        "job_kind": job["kind"],
        "job_key_prefix": job["key_prefix"],
        "job_payload": job["payload"],
        "event_name": event[0],
        "envelope": event[1],
        **audit_values,
    }
    return set((await session.execute(_CREATE_TASKS, params)).scalars())


async def latest_follow_up_task(session: AsyncSession, participant_id: str) -> MonevTask | None:
    """The participant's most recently surveyed follow-up task (else the latest one due)."""
    query = (
        select(MonevTask)
        .where(col(MonevTask.participant_id) == participant_id, col(MonevTask.kind) == "follow_up")
        .order_by(col(MonevTask.done_at).desc().nulls_last(), col(MonevTask.due_at).desc(), col(MonevTask.id))
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def open_mentoring_task_ids(session: AsyncSession, decision_id: str) -> list[str]:
    query = (
        select(col(MonevTask.id))
        .where(
            col(MonevTask.kind) == "mentoring",
            col(MonevTask.decision_id) == decision_id,
            col(MonevTask.status).in_(OPEN_STATUSES),
        )
        .order_by(col(MonevTask.id))
    )
    return list((await session.execute(query)).scalars().all())


async def list_tasks(
    session: AsyncSession,
    *,
    filters: TaskFilter,
    scope_assignee: str | None,
    scope_region: str | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[MonevTask]:
    conditions: list[Any] = []
    if scope_assignee is not None:
        conditions.append(col(MonevTask.assignee) == scope_assignee)
    if scope_region is not None:
        conditions.append(col(MonevTask.region_code).startswith(scope_region))
    if filters.status:
        conditions.append(col(MonevTask.status) == filters.status)
    if filters.kind:
        conditions.append(col(MonevTask.kind) == filters.kind)
    if filters.assignee:
        conditions.append(col(MonevTask.assignee) == filters.assignee)
    if filters.region_prefix:
        conditions.append(col(MonevTask.region_code).startswith(filters.region_prefix))
    if filters.participant_id:
        conditions.append(col(MonevTask.participant_id) == filters.participant_id)
    if filters.due_before:
        conditions.append(col(MonevTask.due_at) < filters.due_before)
    if filters.due_after:
        conditions.append(col(MonevTask.due_at) >= filters.due_after)
    if after is not None:
        after_due, after_id = after
        conditions.append(
            or_(
                col(MonevTask.due_at) > after_due,
                and_(col(MonevTask.due_at) == after_due, col(MonevTask.id) > after_id),
            )
        )
    query = select(MonevTask)
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(col(MonevTask.due_at), col(MonevTask.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def reload(session: AsyncSession, *rows: MonevTask | MonevSurvey) -> None:
    """Reads the rows back from the database (after a flush: the stored values, instants in UTC)."""
    for row in rows:
        await session.refresh(row)


async def survey_version(session: AsyncSession, task_id: str, version: int) -> MonevSurvey | None:
    query = select(MonevSurvey).where(col(MonevSurvey.task_id) == task_id, col(MonevSurvey.version) == version)
    return (await session.execute(query)).scalars().first()


async def surveys_of(session: AsyncSession, task_id: str) -> list[MonevSurvey]:
    query = select(MonevSurvey).where(col(MonevSurvey.task_id) == task_id).order_by(col(MonevSurvey.version))
    return list((await session.execute(query)).scalars().all())


async def baseline(session: AsyncSession, participant_id: str) -> BaselineParticipant | None:
    return await session.get(BaselineParticipant, participant_id)


async def baseline_regions(session: AsyncSession, participant_ids: set[str]) -> dict[str, str]:
    """Village codes the registry read model knows for these participants."""
    query = select(col(BaselineParticipant.participant_id), col(BaselineParticipant.region_code)).where(
        # one array parameter (one prepared statement whatever the count), not an expanding IN
        col(BaselineParticipant.participant_id) == any_of("ids", participant_ids),
        col(BaselineParticipant.region_code).is_not(None),
    )
    return {row[0]: row[1] for row in (await session.execute(query)).all()}


async def facilitators_for_region(session: AsyncSession, region_code: str) -> list[tuple[str, int, int]]:
    """Facilitators whose prefix covers the village, longest prefix first, then least open tasks,
    then subject id (deterministic). Returns (subject, open task count, prefix length)."""
    open_tasks = (
        select(func.count())
        .select_from(MonevTask)
        .where(col(MonevTask.assignee) == col(FacilitatorRegion.subject), col(MonevTask.status).in_(OPEN_STATUSES))
        .scalar_subquery()
    )
    prefix_length = func.length(col(FacilitatorRegion.region_prefix))
    query = (
        select(col(FacilitatorRegion.subject), open_tasks.label("open_tasks"), prefix_length)
        .where(func.strpos(region_code, col(FacilitatorRegion.region_prefix)) == 1)
        .order_by(prefix_length.desc(), open_tasks, col(FacilitatorRegion.subject))
    )
    return [(row[0], int(row[1]), int(row[2])) for row in (await session.execute(query)).all()]


async def facilitator_region(session: AsyncSession, subject: str, region_prefix: str) -> FacilitatorRegion | None:
    query = select(FacilitatorRegion).where(
        col(FacilitatorRegion.subject) == subject, col(FacilitatorRegion.region_prefix) == region_prefix
    )
    return (await session.execute(query)).scalars().first()


async def facilitator_region_by_id(session: AsyncSession, coverage_id: str) -> FacilitatorRegion | None:
    return await session.get(FacilitatorRegion, coverage_id)


async def add_facilitator_region(session: AsyncSession, row: FacilitatorRegion) -> tuple[FacilitatorRegion, bool]:
    """Stores the coverage unless the same (subject, prefix) is stored: (the stored row, True when new).
    A concurrent identical insert that wins is returned as the stored row."""
    existing = await facilitator_region(session, row.subject, row.region_prefix)
    if existing is not None:
        return existing, False
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # a concurrent identical request won
        again = await facilitator_region(session, row.subject, row.region_prefix)
        assert again is not None
        return again, False
    return row, True


async def delete_facilitator_region(session: AsyncSession, row: FacilitatorRegion) -> None:
    await session.delete(row)
    await session.flush()


async def list_facilitator_regions(
    session: AsyncSession, *, subject: str | None, after: tuple[str, str] | None, limit: int
) -> list[FacilitatorRegion]:
    query = select(FacilitatorRegion)
    if subject:
        query = query.where(col(FacilitatorRegion.subject) == subject)
    if after is not None:
        query = query.where(
            or_(
                col(FacilitatorRegion.region_prefix) > after[0],
                and_(col(FacilitatorRegion.region_prefix) == after[0], col(FacilitatorRegion.id) > after[1]),
            )
        )
    query = query.order_by(col(FacilitatorRegion.region_prefix), col(FacilitatorRegion.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


def _group_key(group_by: str, business_timezone: str) -> Any:
    match group_by:
        case "centre":
            return col(MonevTask.centre_id)
        case "business_field":
            return rolled_up(col(MonevTask.business_field))  # a sub-field counts in its field
        case "province":
            return func.substr(col(MonevTask.region_code), 1, 2)
        case "regency":
            return func.substr(col(MonevTask.region_code), 1, 4)
        case "training_year":
            local = func.timezone(business_timezone, col(MonevTask.training_completed_at))
            return func.cast(func.extract("year", local), Integer)
    raise ValueError(group_by)


async def summary(
    session: AsyncSession,
    *,
    group_by: str,
    business_timezone: str,
    region_prefix: str | None,
    due_before: datetime | None,
) -> list[dict[str, Any]]:
    """One row per group, aggregated in PostgreSQL over tasks and their survey version in force."""
    key = _group_key(group_by, business_timezone).label("group_key")
    survey = MonevSurvey.__table__.alias("latest")  # type: ignore[attr-defined]
    is_done = col(MonevTask.status) == "done"
    income_quartiles = func.percentile_cont(pg_array([0.25, 0.5, 0.75])).within_group(survey.c.income_change)
    query = (
        select(
            key,
            func.count().label("tasks_total"),
            func.count().filter(col(MonevTask.status).in_(CAME_DUE)).label("tasks_due"),
            func.count().filter(is_done).label("tasks_done"),
            func.count().filter(col(MonevTask.status) == "overdue").label("tasks_overdue"),
            func.count(survey.c.id).label("surveyed"),
            func.count(func.distinct(col(MonevTask.participant_id))).label("persons"),
            # a participant whose household monev has not heard of counts as a family of its own
            func.count(
                func.distinct(
                    func.coalesce(
                        col(BaselineParticipant.household_id), literal("participant:") + col(MonevTask.participant_id)
                    )
                )
            ).label("kpm"),
            income_quartiles.label("income_quartiles"),
            func.avg(case((survey.c.business_status == "active", 1.0), (survey.c.id.is_not(None), 0.0))).label(
                "business_active_share"
            ),
            func.avg(survey.c.welfare_index).label("welfare_index_mean"),
            func.avg(survey.c.independence_index).label("independence_index_mean"),
        )
        .select_from(MonevTask)
        .outerjoin(
            survey,
            and_(survey.c.task_id == col(MonevTask.id), survey.c.version == col(MonevTask.submission_version)),
        )
        .outerjoin(BaselineParticipant, col(BaselineParticipant.participant_id) == col(MonevTask.participant_id))
        .group_by(key)
        .order_by(key)
    )
    if region_prefix:
        query = query.where(col(MonevTask.region_code).startswith(region_prefix))
    if due_before:
        query = query.where(col(MonevTask.due_at) < due_before)
    return [dict(row._mapping) for row in (await session.execute(query)).all()]


# ------------------------------------------------------------------ baselines (read model)


async def upsert_baseline(session: AsyncSession, row: dict[str, Any]) -> None:
    """The newer version wins; `row` holds the baseline columns to store (all of them, or the erased ones)."""
    await upsert_baselines(session, [row])


async def upsert_baselines(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """`upsert_baseline` set-based for a batch of events in delivery order (pena.readmodel)."""
    table = BaselineParticipant.__table__  # type: ignore[attr-defined]
    # the household stays where the event carries none (events older than households, erasure)
    await upsert_many_if_newer(session, table, rows, key="participant_id", keep_when_null=("household_id",))


# ------------------------------------------------------------------ a participant leaves (exit, erasure)


async def open_task_ids(session: AsyncSession, participant_id: str) -> list[str]:
    query = (
        select(col(MonevTask.id))
        .where(col(MonevTask.participant_id) == participant_id, col(MonevTask.status).in_(OPEN_STATUSES))
        .order_by(col(MonevTask.id))
    )
    return list((await session.execute(query)).scalars().all())


async def cancel_tasks(session: AsyncSession, task_ids: list[str], *, reason: str, now: datetime) -> list[str]:
    """Cancels those of the tasks still open (one statement); returns the ids cancelled."""
    if not task_ids:
        return []
    table = MonevTask.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id.in_(task_ids), table.c.status.in_(OPEN_STATUSES))
        .values(status="cancelled", cancel_reason=reason, cancelled_at=now, updated_at=now)
        .returning(table.c.id)
    )
    return list((await session.execute(statement)).scalars().all())


# the survey columns an erasure blanks: every figure of the family, the measures computed from them
# and the free text (what stays: visit date, respondent kind, business status and field, assistance
# codes, exit statement, formula version, who submitted when)
ERASED_SURVEY_COLUMNS = (
    "monthly_revenue",
    "monthly_household_income",
    "household_size",
    "workers_employed",
    "business_assets",
    "savings",
    "welfare_self_assessment",
    "notes_encrypted",
    "early_reason_encrypted",
    "correction_reason",
    "baseline_monthly_income",
    "baseline_household_size",
    "income_change",
    "income_per_member",
    "income_per_member_change",
    "welfare_index",
    "independence_index",
)


async def erase_surveys(session: AsyncSession, participant_id: str, *, now: datetime) -> int:
    """Blanks the figures and notes of every survey version of the participant's tasks not yet erased;
    returns how many versions were erased (0 when redelivered)."""
    table = MonevSurvey.__table__  # type: ignore[attr-defined]
    tasks = select(col(MonevTask.id)).where(col(MonevTask.participant_id) == participant_id)
    statement = (
        update(table)
        .where(table.c.task_id.in_(tasks.scalar_subquery()), table.c.erased_at.is_(None))
        .values(dict.fromkeys(ERASED_SURVEY_COLUMNS) | {"erased_at": now})
    )
    result = await session.execute(statement)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# ------------------------------------------------------------------ survey imports (a chunk at a time)


async def tasks_named(session: AsyncSession, *, task_ids: set[str], participant_ids: set[str]) -> list[Any]:
    """What a row of an import finds its task by (id, participant, kind, wave, due time, status) and the
    task's reach (assignee, region), for the tasks with these ids and every task of these participants;
    read without locks (the tasks found are then locked with `lock_tasks`)."""
    if not task_ids and not participant_ids:
        return []
    table = MonevTask.__table__  # type: ignore[attr-defined]
    columns = ("id", "participant_id", "kind", "wave", "due_at", "status", "assignee", "region_code")
    query = select(*(table.c[c] for c in columns)).where(
        or_(table.c.id == any_of("ids", task_ids), table.c.participant_id == any_of("participants", participant_ids))
    )
    return list((await session.execute(query)).all())


async def lock_tasks(session: AsyncSession, task_ids: set[str]) -> list[MonevTask]:
    """The tasks, locked for the transaction in id order (the caller locked their jobs first), as plain
    objects outside the session: a chunk changes them in Python and writes them back in one statement
    (an attached object would be flushed row by row)."""
    if not task_ids:
        return []
    table = MonevTask.__table__  # type: ignore[attr-defined]
    query = select(table).where(table.c.id == any_of("ids", task_ids)).order_by(table.c.id).with_for_update()
    return detached(MonevTask, (await session.execute(query)).all())


async def baselines_of(session: AsyncSession, participant_ids: set[str]) -> dict[str, BaselineParticipant]:
    if not participant_ids:
        return {}
    query = select(BaselineParticipant).where(col(BaselineParticipant.participant_id) == any_of("ids", participant_ids))
    return {b.participant_id: b for b in (await session.execute(query)).scalars().all()}


async def surveys_in_force(session: AsyncSession, tasks: list[MonevTask]) -> dict[str, dict[str, Any]]:
    """The survey version in force of each task that has one (its column values), by task id."""
    surveyed = [t for t in tasks if t.submission_version > 0]
    if not surveyed:
        return {}
    table = MonevSurvey.__table__  # type: ignore[attr-defined]
    query = select(table).where(
        table.c.task_id == any_of("ids", {t.id for t in surveyed}),
        table.c.version == MonevTask.__table__.c.submission_version,  # type: ignore[attr-defined]
        MonevTask.__table__.c.id == table.c.task_id,  # type: ignore[attr-defined]
    )
    return {row["task_id"]: dict(row) for row in (await session.execute(query)).mappings().all()}


async def insert_surveys(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New survey versions of locked tasks (nothing conflicts), through COPY for a chunk's rows."""
    await copy_rows(session, MonevSurvey.__table__, rows)  # type: ignore[attr-defined]


async def complete_tasks(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Writes (id, status, submission_version, done_at, updated_at) of surveyed tasks, one statement."""
    await update_rows(session, MonevTask.__table__, rows, key="id")  # type: ignore[attr-defined]
