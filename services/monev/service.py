"""Use cases of the monev service. Keyword-only async functions taking the session; they never commit
(the request dependency, the consumer runner or the scheduler owns the transaction)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audit, record_audits
from pena.auth import Principal
from pena.clock import Clock, business_date, business_time, business_today
from pena.contracts import MonevCompleted, MonevDue, MonevOverdue, MonevScheduled, TrainingCompleted
from pena.crypto import FieldCipher
from pena.db import insert_rows
from pena.durations import add_duration, parse_duration
from pena.ids import new_id
from pena.outbox import emit, emit_rows, outbox_row
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, field_error, not_found
from pena.scheduler import cancel_job, job_row, lock_jobs, schedule_job, schedule_jobs
from pena.settings import Settings
from services.monev import measures, queries
from services.monev.models import FacilitatorRegion, MonevSurvey, MonevTask
from services.monev.schemas import AssignmentIn, FacilitatorRegionIn, FacilitatorRegionRead, SurveyIn, TaskSummary
from services.monev.settings import MonevSettings

DUE_JOB = "monev.due"
OVERDUE_JOB = "monev.overdue"
AUTO_ASSIGNED = "auto:region"


def due_job_key(task_id: str) -> str:
    return f"{DUE_JOB}:{task_id}"


def overdue_job_key(task_id: str) -> str:
    return f"{OVERDUE_JOB}:{task_id}"


def due_time(completed_at: datetime, wave: str, business_timezone: str) -> datetime:
    """Calendar months are counted on the business calendar (WIB by default), so a completion on the
    evening of 30 November local time is due at the end of February, not on 1 March."""
    return add_duration(business_time(completed_at, business_timezone), wave)


# ------------------------------------------------------------------ who sees what


def task_scope(principal: Principal) -> tuple[str | None, str | None]:
    """(assignee, region prefix) a caller is limited to. Admins see everything; a facilitator only the
    tasks assigned to them; verifiers and other readers everything, or their unit's region when the
    token carries one."""
    if principal.is_admin:
        return None, None
    if principal.has_role("facilitator"):
        return principal.subject, None
    return None, principal.unit or None


def _visible(principal: Principal, task: MonevTask) -> bool:
    assignee, region = task_scope(principal)
    if assignee is not None and task.assignee != assignee:
        return False
    return region is None or task.region_code.startswith(region)


async def load_task(
    session: AsyncSession, *, principal: Principal, task_id: str, for_update: bool = False
) -> MonevTask:
    """The task if the caller may see it; someone else's task is reported as missing (no leak)."""
    task = await queries.task_by_id(session, task_id, for_update=for_update)
    if task is None or not _visible(principal, task):
        raise not_found("monev task", task_id)
    return task


# ------------------------------------------------------------------ scheduling (training.completed)


class RegionAssigner:
    """Picks the automatic assignee of new tasks: among the facilitators with the longest prefix
    covering the village, the one with the fewest open tasks (then by subject id). Counts what it
    hands out, so the tasks of one batch of events are spread as if created one by one."""

    def __init__(self) -> None:
        self._candidates: dict[str, list[list[Any]]] = {}

    async def load(self, session: AsyncSession, region_codes: set[str]) -> None:
        for region_code in region_codes - self._candidates.keys():
            found = await queries.facilitators_for_region(session, region_code)
            longest = found[0][2] if found else 0
            self._candidates[region_code] = [[subject, open_tasks] for subject, open_tasks, n in found if n == longest]

    def pick(self, region_code: str) -> str | None:
        candidates = self._candidates[region_code]
        if not candidates:
            return None
        chosen = min(candidates, key=lambda c: (c[1], c[0]))
        chosen[1] += 1
        return str(chosen[0])


# a completion and the context its events and audit rows are written in (the event that announced it)
CompletionInContext = tuple[TrainingCompleted, Callable[[], AbstractContextManager[None]]]


async def schedule_follow_ups(
    session: AsyncSession,
    *,
    completions: list[CompletionInContext],
    settings: Settings,
    monev_settings: MonevSettings,
    clock: Clock,
) -> list[str]:
    """One task per configured wave and completion, written set-based (a few statements for a whole
    batch of events). A task that exists for (participant, batch, wave) is left as it is, so a
    redelivered or re-announced completion changes nothing. Returns the ids of the tasks created."""
    now = clock.now()
    for wave in monev_settings.monev_delays:
        parse_duration(wave)  # a misconfigured wave fails loudly (the event is retried, then dead-lettered)
    known_regions = await queries.baseline_regions(session, {c.participant_id for c, _ in completions})
    assigner = RegionAssigner()
    regions = [known_regions.get(c.participant_id) or c.region_code for c, _ in completions]
    await assigner.load(session, set(regions))
    planned: dict[str, tuple[int, dict[str, Any]]] = {}
    for index, ((completion, _), region_code) in enumerate(zip(completions, regions, strict=True)):
        for wave in monev_settings.monev_delays:
            # assigned before the insert: a rare conflicting duplicate still counts towards its facilitator
            assignee = assigner.pick(region_code)
            task_id = new_id()
            planned[task_id] = (
                index,
                {
                    "id": task_id,
                    "participant_id": completion.participant_id,
                    "batch_id": completion.batch_id,
                    "centre_id": completion.centre_id,
                    "business_field": completion.business_field,
                    "region_code": region_code,
                    "wave": wave,
                    "training_completed_at": completion.completed_at,
                    "due_at": due_time(completion.completed_at, wave, settings.business_timezone),
                    "status": "scheduled",
                    "assignee": assignee,
                    "assigned_by": AUTO_ASSIGNED if assignee else None,
                    "submission_version": 0,
                    "created_at": now,
                    "updated_at": now,
                },
            )
    # a task that exists for (participant, batch, wave) meets monev_tasks_participant_batch_wave
    table = MonevTask.__table__  # type: ignore[attr-defined]
    rows = [row for _, row in planned.values()]
    created = set(await insert_rows(session, table, rows, skip_conflicts=True, returning="id"))
    jobs, events, audits = [], [], []
    for task_id, (index, task) in planned.items():
        if task_id not in created:
            continue
        completion, in_context = completions[index]
        # the grace period and zone travel with the job: job handlers receive no settings
        jobs.append(
            job_row(
                kind=DUE_JOB,
                key=due_job_key(task_id),
                due_at=task["due_at"],
                payload={
                    "task_id": task_id,
                    "grace": monev_settings.monev_grace,
                    "timezone": settings.business_timezone,
                },
            )
        )
        with in_context():
            scheduled = MonevScheduled(
                task_id=task_id,
                participant_id=completion.participant_id,
                batch_id=completion.batch_id,
                wave=task["wave"],
                training_completed_at=completion.completed_at,
                due_at=task["due_at"],
            )
            events.append(outbox_row("monev.scheduled", scheduled, subject=completion.participant_id, time=now)[1])
            audits.append(
                audit_row(
                    actor=None,
                    action="monev.task.scheduled",
                    subject_type="monev_task",
                    subject_id=task_id,
                    details={"wave": task["wave"], "auto_assigned": task["assignee"] is not None},
                )
            )
    await schedule_jobs(session, jobs)
    await emit_rows(session, events)
    await record_audits(session, audits)
    return [task_id for task_id in planned if task_id in created]


async def announce_due(session: AsyncSession, *, task_id: str, grace: str, timezone: str, clock: Clock) -> bool:
    """Job: the task came due. Marks it, announces it and schedules the overdue check. A task already
    done (survey submitted right at due time) is not announced. Returns True when announced."""
    now = clock.now()
    task = await queries.task_by_id(session, task_id, for_update=True)
    if task is None or task.status != "scheduled":
        return False
    # backfilled tasks (due long ago) come due now: the grace period counts from the announcement
    grace_from = business_time(max(task.due_at, now), timezone)
    task.status = "due"
    task.announced_at = now
    task.overdue_at = add_duration(grace_from, grace)
    task.updated_at = now
    session.add(task)
    await session.flush()
    await schedule_job(
        session, kind=OVERDUE_JOB, key=overdue_job_key(task.id), due_at=task.overdue_at, payload={"task_id": task.id}
    )
    await emit(
        session,
        "monev.due",
        MonevDue(task_id=task.id, participant_id=task.participant_id, wave=task.wave, due_at=task.due_at),
        subject=task.participant_id,
        time=now,
    )
    return True


async def announce_overdue(session: AsyncSession, *, task_id: str, clock: Clock) -> bool:
    now = clock.now()
    task = await queries.task_by_id(session, task_id, for_update=True)
    if task is None or task.status != "due":
        return False  # done in time (the job is normally cancelled then) or already overdue
    task.status = "overdue"
    task.updated_at = now
    session.add(task)
    await session.flush()
    assert task.overdue_at is not None
    await emit(
        session,
        "monev.overdue",
        MonevOverdue(
            task_id=task.id,
            participant_id=task.participant_id,
            wave=task.wave,
            due_at=task.due_at,
            overdue_at=task.overdue_at,
        ),
        subject=task.participant_id,
        time=now,
    )
    return True


# ------------------------------------------------------------------ baseline read model (participant.*)


async def apply_baseline(
    session: AsyncSession,
    *,
    participant_id: str,
    version: int,
    region_code: str | None,
    household_size: int | None,
    baseline_monthly_income: int | None,
    clock: Clock,
) -> None:
    """Moves a row forward only: a version not newer than the stored one changes nothing."""
    now = clock.now()
    await queries.upsert_baseline(
        session,
        {
            "participant_id": participant_id,
            "version": version,
            "updated_at": now,
            "region_code": region_code,
            "household_size": household_size,
            "baseline_monthly_income": baseline_monthly_income,
        },
    )


async def forget_baseline(session: AsyncSession, *, participant_id: str, version: int, clock: Clock) -> None:
    """Erasure in the registry: drop the baseline figures held here (the village code stays for the
    programme's statistics). Stored with the erasure's version, so a late older event cannot restore them."""
    now = clock.now()
    erased = {"household_size": None, "baseline_monthly_income": None}
    await queries.upsert_baseline(
        session, {"participant_id": participant_id, "version": version, "updated_at": now} | erased
    )


# ------------------------------------------------------------------ facilitators and assignment


async def add_facilitator_region(
    session: AsyncSession, *, principal: Principal, clock: Clock, data: FacilitatorRegionIn
) -> FacilitatorRegion:
    principal.require("monev:assign")
    existing = await queries.facilitator_region(session, data.subject, data.region_prefix)
    if existing is not None:
        return existing  # the same coverage twice is the same fact
    row = FacilitatorRegion(
        id=new_id(),
        subject=data.subject,
        region_prefix=data.region_prefix,
        created_by=principal.subject,
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:  # a concurrent identical request won
        again = await queries.facilitator_region(session, data.subject, data.region_prefix)
        assert again is not None
        return again
    await record_audit(
        session,
        actor=principal,
        action="monev.facilitator_region.added",
        subject_type="facilitator",
        subject_id=data.subject,
        details={"region_prefix": data.region_prefix},
    )
    return row


async def remove_facilitator_region(session: AsyncSession, *, principal: Principal, coverage_id: str) -> None:
    """Stops automatic assignment there; tasks already assigned stay with the facilitator."""
    principal.require("monev:assign")
    row = await session.get(FacilitatorRegion, coverage_id)
    if row is None:
        raise not_found("facilitator region", coverage_id)
    await session.delete(row)
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action="monev.facilitator_region.removed",
        subject_type="facilitator",
        subject_id=row.subject,
        details={"region_prefix": row.region_prefix},
    )


async def assign_task(
    session: AsyncSession, *, principal: Principal, clock: Clock, task_id: str, data: AssignmentIn
) -> MonevTask:
    principal.require("monev:assign")
    task = await load_task(session, principal=principal, task_id=task_id, for_update=True)
    previous = task.assignee
    task.assignee = data.facilitator
    task.assigned_by = principal.subject
    if data.region:
        task.region_code = data.region
    task.updated_at = clock.now()
    session.add(task)
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action="monev.task.assigned",
        subject_type="monev_task",
        subject_id=task.id,
        details={"from": previous, "to": data.facilitator, "region_changed": bool(data.region)},
    )
    return task


# ------------------------------------------------------------------ reading


async def get_task(
    session: AsyncSession, *, principal: Principal, task_id: str
) -> tuple[MonevTask, MonevSurvey | None]:
    task = await load_task(session, principal=principal, task_id=task_id)
    survey = (
        await queries.survey_version(session, task.id, task.submission_version) if task.submission_version else None
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.task.read",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={"participant_id": task.participant_id, "with_result": survey is not None},
    )
    return task, survey


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: queries.TaskFilter,
    page: PageRequest,
) -> Page[TaskSummary]:
    after = read_cursor(page, ("due_at", datetime), ("id", str))
    scope_assignee, scope_region = task_scope(principal)
    rows = await queries.list_tasks(
        session,
        filters=filters,
        scope_assignee=scope_assignee,
        scope_region=scope_region,
        after=after,
        limit=page.limit,
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.task.listed",
        subject_type="monev_task",
        subject_id=None,
        purpose="monev follow-up",
        details={"returned": min(len(rows), page.limit)},
    )
    return keyset_page(rows, page, key=lambda t: {"due_at": t.due_at.isoformat(), "id": t.id}, item=task_summary)


def task_summary(task: MonevTask) -> TaskSummary:
    return TaskSummary.model_validate(task, from_attributes=True)


async def list_facilitator_regions(
    session: AsyncSession, *, subject: str | None, page: PageRequest
) -> Page[FacilitatorRegionRead]:
    after = read_cursor(page, ("prefix", str), ("id", str))
    rows = await queries.list_facilitator_regions(session, subject=subject, after=after, limit=page.limit)
    return keyset_page(
        rows,
        page,
        key=lambda r: {"prefix": r.region_prefix, "id": r.id},
        item=lambda r: FacilitatorRegionRead.model_validate(r, from_attributes=True),
    )


async def survey_history(session: AsyncSession, *, principal: Principal, task_id: str) -> list[MonevSurvey]:
    task = await load_task(session, principal=principal, task_id=task_id)
    surveys = await queries.surveys_of(session, task.id)
    await record_audit(
        session,
        actor=principal,
        action="monev.survey.read",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={"versions": len(surveys)},
    )
    return surveys


def decrypt_notes(survey: MonevSurvey, settings: Settings) -> str | None:
    if survey.notes_encrypted is None:
        return None
    return FieldCipher(settings.field_encryption_key).decrypt(survey.notes_encrypted)


# ------------------------------------------------------------------ survey


def _validate_visit(visit_date: date, task: MonevTask, *, clock: Clock, settings: Settings) -> None:
    trained_on = business_date(task.training_completed_at, settings.business_timezone)
    if visit_date < trained_on:
        raise field_error(
            "visit_date",
            "visit_before_training",
            f"visit_date must not be before the training was completed ({trained_on.isoformat()})",
        )
    today = business_today(clock, settings.business_timezone)
    if visit_date > today:
        raise field_error("visit_date", "visit_in_future", f"visit_date must not be after today ({today.isoformat()})")


async def submit_survey(
    session: AsyncSession, *, principal: Principal, clock: Clock, settings: Settings, task_id: str, data: SurveyIn
) -> tuple[MonevTask, MonevSurvey]:
    principal.require("monev:submit")
    # the due/overdue jobs also update this task: lock them first, in the scheduler's order
    await lock_jobs(session, [due_job_key(task_id), overdue_job_key(task_id)])
    task = await load_task(session, principal=principal, task_id=task_id, for_update=True)
    if not principal.is_admin and task.assignee != principal.subject:
        raise Problem(403, "Forbidden", "only the assigned facilitator may submit this survey", type_="not_assignee")
    now = clock.now()
    if task.due_at > now:
        raise Problem(
            409,
            "Conflict",
            f"the task is not due before {task.due_at.isoformat()}",
            type_="task_not_due",
            due_at=task.due_at.isoformat(),
        )
    _validate_visit(data.visit_date, task, clock=clock, settings=settings)
    correcting = task.submission_version > 0
    if correcting and not data.correction_reason:
        raise Problem(
            409,
            "Conflict",
            "a survey was already submitted for this task; send correction_reason to submit a corrected version",
            type_="correction_reason_required",
            submission_version=task.submission_version,
        )
    indicators = data.indicators()
    known = await queries.baseline(session, task.participant_id)
    result = measures.compute(
        indicators,
        measures.Baseline(
            monthly_income=known.baseline_monthly_income if known else None,
            household_size=known.household_size if known else None,
        ),
    )
    version = task.submission_version + 1
    survey = MonevSurvey(
        id=new_id(),
        task_id=task.id,
        version=version,
        visit_date=data.visit_date,
        respondent=data.respondent,
        notes_encrypted=FieldCipher(settings.field_encryption_key).encrypt(data.notes) if data.notes else None,
        correction_reason=data.correction_reason if correcting else None,
        submitted_by=principal.subject,
        submitted_at=now,
        **indicators.model_dump(),
        **result.model_dump(),
    )
    session.add(survey)
    task.submission_version = version
    task.status = "done"
    task.done_at = task.done_at or now
    task.updated_at = now
    session.add(task)
    await session.flush()
    # a survey arriving early or at due time makes both announcements pointless
    await cancel_job(session, due_job_key(task.id), now)
    await cancel_job(session, overdue_job_key(task.id), now)
    await emit(
        session,
        "monev.completed",
        _completed_event(task, survey, indicators=indicators, result=result, now=now),
        subject=task.participant_id,
        time=now,
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.survey.corrected" if correcting else "monev.survey.submitted",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={"version": version, "formula_version": result.formula_version},
    )
    return task, survey


def _completed_event(
    task: MonevTask,
    survey: MonevSurvey,
    *,
    indicators: Any,
    result: measures.MonevMeasures,
    now: datetime,
) -> MonevCompleted:
    return MonevCompleted(
        task_id=task.id,
        participant_id=task.participant_id,
        batch_id=task.batch_id,
        centre_id=task.centre_id,
        business_field=task.business_field,
        region_code=task.region_code,
        wave=task.wave,
        visit_date=survey.visit_date,
        submission_version=survey.version,
        indicators=indicators,
        measures=result,
        completed_at=now,
    )


def indicators_of(survey: MonevSurvey) -> dict[str, Any]:
    return {name: getattr(survey, name) for name in measures.MonevIndicators.model_fields}


def measures_of(survey: MonevSurvey) -> dict[str, Any]:
    return {name: getattr(survey, name) for name in measures.MonevMeasures.model_fields}


# ------------------------------------------------------------------ summary


async def summary(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    group_by: str,
    region_prefix: str | None,
    due_before: datetime | None,
) -> list[dict[str, Any]]:
    if principal.has_role("facilitator") and not principal.is_admin:
        raise Problem(403, "Forbidden", "the summary is for admins and verifiers", type_="forbidden")
    _, scope_region = task_scope(principal)
    if scope_region and region_prefix and not region_prefix.startswith(scope_region):
        raise field_error("region_prefix", "within_unit", "region_prefix must lie within your unit")
    rows = await queries.summary(
        session,
        group_by=group_by,
        business_timezone=settings.business_timezone,
        region_prefix=region_prefix or scope_region,
        due_before=due_before,
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.summary.read",
        subject_type="monev_summary",
        subject_id=None,
        details={"group_by": group_by, "groups": len(rows)},
    )
    return rows
