"""The facilitator's survey of a due task: validation, measures against the baseline, corrections as
new versions, monev.completed; and the history of a task's survey versions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audit, record_audits
from pena.auth import Principal
from pena.clock import Clock, business_date, business_today
from pena.contracts import MonevCompleted
from pena.contracts.monev import MonevIndicators
from pena.crypto import FieldCipher
from pena.idempotency import claim_key, store_response
from pena.ids import new_id
from pena.outbox import emit
from pena.problems import Problem, field_error
from pena.scheduler import cancel_job, lock_jobs
from pena.settings import Settings
from services.monev import measures, queries, views
from services.monev.models import BaselineParticipant, MonevSurvey, MonevTask
from services.monev.scheduling import due_job_key, overdue_job_key
from services.monev.schemas import SurveyCreate, SurveyRead, TaskRead
from services.monev.tasks import load_task


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


def visit_is_early(visit_date: date, early_reason: str | None, task: MonevTask, *, settings: Settings) -> bool:
    """The visit rule: a wave's visit falls on or after the task's due date (in the business calendar);
    an earlier visit counts only with an `early_reason` and is then stored and announced as early."""
    due_on = business_date(task.due_at, settings.business_timezone)
    if visit_date >= due_on:
        return False
    if not early_reason:
        raise field_error(
            "early_reason",
            "required_for_early_visit",
            f"visit_date lies before the task's due date ({due_on.isoformat()}): "
            "an early visit needs early_reason, or visit on or after the due date",
        )
    return True


def check_submission(
    task: MonevTask, data: SurveyCreate, *, principal: Principal, clock: Clock, settings: Settings
) -> bool:
    """The rules every survey of `task` meets, on every path (one survey over HTTP, a row of an
    import): the assigned facilitator or an admin, a task not cancelled and due, the visit date, the
    early-visit rule, a correction reason for a second survey. Raises the Problem; returns `early`."""
    if not principal.is_admin and task.assignee != principal.subject:
        raise Problem(403, "Forbidden", "only the assigned facilitator may submit this survey", type_="not_assignee")
    if task.status == "cancelled":
        raise Problem(
            409,
            "Task cancelled",
            f"the task was cancelled ({task.cancel_reason}): no survey is taken",
            type_="task_cancelled",
        )
    if task.due_at > clock.now():
        raise Problem(
            409,
            "Conflict",
            f"the task is not due before {task.due_at.isoformat()}",
            type_="task_not_due",
            due_at=task.due_at.isoformat(),
        )
    _validate_visit(data.visit_date, task, clock=clock, settings=settings)
    early = visit_is_early(data.visit_date, data.early_reason, task, settings=settings)
    if task.submission_version > 0 and not data.correction_reason:
        raise Problem(
            409,
            "Conflict",
            "a survey was already submitted for this task; send correction_reason to submit a corrected version",
            type_="correction_reason_required",
            submission_version=task.submission_version,
        )
    return early


def new_survey(
    task: MonevTask,
    data: SurveyCreate,
    *,
    early: bool,
    baseline: BaselineParticipant | None,
    submitted_by: str,
    settings: Settings,
    now: datetime,
) -> tuple[dict[str, Any], MonevIndicators, measures.MonevMeasures]:
    """The next survey version of `task` with its measures against the baseline, as the column values
    of a `monev_surveys` row (not stored: the caller stores it, or many at once; plain values, as a
    table model instance costs more to build than the rest of the survey)."""
    indicators = data.indicators()
    result = measures.compute(
        indicators,
        measures.Baseline(
            monthly_income=baseline.baseline_monthly_income if baseline else None,
            household_size=baseline.household_size if baseline else None,
            # follow-up waves come before the graduation (exit) decision; mentoring visits after it
            exit_decided=task.kind == "mentoring",
        ),
    )
    cipher = FieldCipher(settings.field_encryption_key)
    correcting = task.submission_version > 0
    survey = {
        "id": new_id(),
        "task_id": task.id,
        "version": task.submission_version + 1,
        "visit_date": data.visit_date,
        "respondent": data.respondent,
        "notes_encrypted": cipher.encrypt(data.notes) if data.notes else None,
        "early": early,
        "early_reason_encrypted": cipher.encrypt(data.early_reason) if early and data.early_reason else None,
        "correction_reason": data.correction_reason if correcting else None,
        "submitted_by": submitted_by,
        "submitted_at": now,
        "erased_at": None,
        **indicators.model_dump(),
        **result.model_dump(),
    }
    return survey, indicators, result


def survey_audit(
    task: MonevTask, survey: Mapping[str, Any], *, actor: Principal, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The audit row of a survey version (from `new_survey`): submitted, or corrected from version 2 on."""
    return audit_row(
        actor=actor,
        action="monev.survey.corrected" if survey["version"] > 1 else "monev.survey.submitted",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={"version": survey["version"], "formula_version": survey["formula_version"], "early": survey["early"]}
        | (details or {}),
    )


async def submit_survey(
    session: AsyncSession, *, principal: Principal, clock: Clock, settings: Settings, task_id: str, data: SurveyCreate
) -> tuple[MonevTask, MonevSurvey]:
    principal.require("monev:submit")
    # the due/overdue jobs also update this task: lock them first, in the scheduler's order
    await lock_jobs(session, [due_job_key(task_id), overdue_job_key(task_id)])
    task = await load_task(session, principal=principal, task_id=task_id, for_update=True)
    early = check_submission(task, data, principal=principal, clock=clock, settings=settings)
    now = clock.now()
    known = await queries.baseline(session, task.participant_id)
    values, indicators, result = new_survey(
        task, data, early=early, baseline=known, submitted_by=principal.subject, settings=settings, now=now
    )
    survey = MonevSurvey(**values)
    session.add(survey)
    task.submission_version = survey.version
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
        completed_event(task, values, indicators=indicators, result=result, now=now),
        subject=task.participant_id,
        time=now,
    )
    await record_audits(session, [survey_audit(task, values, actor=principal)])
    return task, survey


def completed_event(
    task: MonevTask,
    survey: Mapping[str, Any],
    *,
    indicators: MonevIndicators,
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
        visit_date=survey["visit_date"],
        early=survey["early"],
        submission_version=survey["version"],
        indicators=indicators,
        measures=result,
        completed_at=now,
        kind=task.kind,  # type: ignore[arg-type]
        decision_id=task.decision_id,
    )


async def survey_history(
    session: AsyncSession, *, principal: Principal, settings: Settings, task_id: str
) -> list[SurveyRead]:
    """Every version of a reachable task's survey; notes only for a caller who may read them."""
    task = await load_task(session, principal=principal, task_id=task_id)
    surveys = await queries.surveys_of(session, task.id)
    with_notes = views.may_read_notes(principal)
    await record_audit(
        session,
        actor=principal,
        action="monev.survey.read",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={"versions": len(surveys), "notes_shown": with_notes},
    )
    return [views.survey_read(s, settings, with_notes=with_notes) for s in surveys]


IDEMPOTENCY_SCOPE = "monev.survey"


async def submit_survey_once(
    session: AsyncSession,
    *,
    principal: Principal,
    clock: Clock,
    settings: Settings,
    task_id: str,
    data: SurveyCreate,
    idempotency_key: str | None,
) -> TaskRead:
    """`submit_survey` once per (client, Idempotency-Key). The answer carries the decrypted notes, so
    the key's stored answer is reduced to (task id, survey version) and a repeat rebuilds the answer
    from the stored survey, for a caller who still reaches the task: no notes in clear at rest."""
    client = principal.client_id or principal.subject
    # the same fingerprint as pena.idempotency.idempotent (a SHA-256 digest is stored, not the body)
    fingerprint = {"scope": IDEMPOTENCY_SCOPE, "body": {"task_id": task_id, **data.model_dump(mode="json")}}
    if idempotency_key:
        stored = await claim_key(session, client_id=client, key=idempotency_key, body=fingerprint)
        if stored:
            return await _replayed(session, principal=principal, settings=settings, stored=stored.body)
    task, survey = await submit_survey(
        session, principal=principal, clock=clock, settings=settings, task_id=task_id, data=data
    )
    # the answer is read back as stored (instants in UTC), exactly as a repeat rebuilds it
    await queries.reload(session, task, survey)
    if idempotency_key:
        reduced = {"task_id": task.id, "survey_version": survey.version}
        await store_response(session, client_id=client, key=idempotency_key, status=201, body=reduced)
    return views.task_read(task, survey, settings, with_notes=True)  # the submitter's own notes


async def _replayed(session: AsyncSession, *, principal: Principal, settings: Settings, stored: Any) -> TaskRead:
    if "survey_version" in stored:
        task_id, version = str(stored["task_id"]), int(stored["survey_version"])
    else:  # a key stored before answers were reduced: the whole task read
        task_id, version = str(stored["id"]), int(stored["result"]["version"])
    task = await load_task(session, principal=principal, task_id=task_id)
    survey = await queries.survey_version(session, task.id, version)
    return views.task_read(task, survey, settings, with_notes=views.may_read_notes(principal))
