"""Field survey results in bulk (issue 16 item 6: backfilling the programme's history), on the kernel's
import runs (pena.imports): a CSV or XLSX file with one Monev visit per row, the same fields as
POST /v1/monev/tasks/{task_id}/survey, read once, stored as encrypted chunks and processed by a
restartable background job, one chunk per transaction.

How a row finds its task (a field team's spreadsheet knows the family, not always the task id):
- `task_id` when the row has it (then `participant_id`, if given, must be the task's);
- else `participant_id` with `kind` (follow_up, the default, or mentoring) and, where the family has
  more than one such task, `wave` (e.g. P3M) and/or `due_month` (YYYY-MM, the task's due month on the
  business calendar). Of several matching tasks the cancelled ones are set aside; still several is
  `task_ambiguous`, none (or none the uploader reaches: answered alike) is `task_not_found`.

A row then meets exactly the rules of a single survey (`surveys.check_submission`: the assigned
facilitator or an admin, a task not cancelled and due, the visit date, the early-visit rule, a
correction reason for a task already surveyed) and becomes the same survey version, the same
`monev.completed` (so graduation assesses a follow-up and checks a mentoring visit for relapse) and the
same audit row (with the import's id); the uploader is the survey's `submitted_by`. A row whose visit
is the task's survey in force (same visit date, respondent and indicators) is a duplicate, not an
error: re-uploading a file changes nothing.

A chunk is set-based: rows validated in Python, one read of the named tasks, their jobs and the tasks
locked (in the scheduler's order, as a single survey locks them), one read of baselines and of the
surveys in force, then one statement per table (surveys, tasks, cancelled due/overdue jobs, outbox,
audit)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field, ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import imports as bulk
from pena.access import reach_of
from pena.audit import record_audits
from pena.clock import business_date
from pena.import_runs import ChunkResult, ImportContext, ImportKind, Rows
from pena.outbox import emit_rows, outbox_row
from pena.problems import Problem
from pena.scheduler import cancel_jobs, lock_jobs
from services.monev import queries, surveys
from services.monev.models import MonevTask
from services.monev.scheduling import due_job_key, overdue_job_key
from services.monev.schemas import SurveyCreate, TaskKind
from services.monev.tasks import reaches

KIND_NAME = "monev.surveys"
LOCATOR_COLUMNS = ("task_id", "participant_id", "kind", "wave", "due_month")
REQUIRED_COLUMNS = (
    "visit_date",
    "respondent",
    "business_status",
    "monthly_revenue",
    "monthly_household_income",
    "household_size",
    "workers_employed",
    "business_assets",
    "savings",
    "welfare_self_assessment",
)
OPTIONAL_COLUMNS = (
    *LOCATOR_COLUMNS,
    "business_field",
    "assistance_still_received",
    "voluntary_exit_statement",
    "notes",
    "early_reason",
    "correction_reason",
)
MAX_ROWS = 1_000_000
CHUNK_ROWS = 2000  # rows per transaction: each encrypts its notes and builds its event; ~2 s a chunk here
# the published template's example row (its second line): a follow-up visit found by participant and wave
EXAMPLE = {
    "task_id": "",
    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
    "kind": "follow_up",
    "wave": "P3M",
    "due_month": "2023-07",
    "visit_date": "2023-07-20",
    "respondent": "participant",
    "business_status": "active",
    "business_field": "fashion_menjahit",
    "monthly_revenue": "4500000",
    "monthly_household_income": "3600000",
    "household_size": "4",
    "workers_employed": "1",
    "business_assets": "7500000",
    "savings": "1200000",
    "assistance_still_received": "PKH;BPNT",
    "welfare_self_assessment": "4",
    "voluntary_exit_statement": "true",
    "notes": "Usaha jahit berjalan",
    "early_reason": "",
    "correction_reason": "",
}
_YES = {"ya": "true", "tidak": "false"}  # the forms' Indonesian answers, beside pydantic's true/false/yes/no/1/0


class SurveyImportRow(SurveyCreate):
    """One row of the file: the survey form's fields and where its task is (not an HTTP body)."""

    task_id: str | None = Field(default=None, max_length=40)
    participant_id: str | None = Field(default=None, max_length=64)
    kind: TaskKind = "follow_up"
    wave: str | None = Field(default=None, max_length=20)
    due_month: str | None = Field(default=None, pattern=r"^\d{4}-(0[1-9]|1[0-2])$")

    def survey(self) -> SurveyCreate:
        values = self.model_dump(exclude=set(LOCATOR_COLUMNS))
        return SurveyCreate.model_construct(self.model_fields_set - set(LOCATOR_COLUMNS), **values)

    @property
    def locator(self) -> str:
        """The column an error about the row's task names."""
        return "task_id" if self.task_id else "participant_id"


def layout() -> bulk.Layout:
    return bulk.Layout(REQUIRED_COLUMNS, OPTIONAL_COLUMNS, max_rows=MAX_ROWS, chunk_rows=CHUNK_ROWS)


def _values(cells: dict[Any, Any]) -> dict[str, Any]:
    """A row's cells as the form's values: empty cells left out (defaults and `missing` apply), lists
    split on ';', the forms' ya/tidak read as true/false."""
    values: dict[str, Any] = {}
    for name, cell in cells.items():
        text = (cell or "").strip() if name is not None else ""
        if not text:
            continue
        if name == "assistance_still_received":
            values[name] = [code.strip() for code in text.split(";") if code.strip()]
        elif name == "voluntary_exit_statement":
            values[name] = _YES.get(text.lower(), text)
        else:
            values[name] = text
    return values


def _validation_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(str(e["loc"][0]) if e["loc"] else "row", str(e["type"])) for e in exc.errors()]


def _problem_errors(problem: Problem, locator: str) -> list[tuple[str, str]]:
    """A single survey's refusal as the error file's (field, rule): a field's own rule, else the
    problem's type on the column that found the task."""
    if problem.errors:
        return [(str(e["field"]), str(e["rule"])) for e in problem.errors]
    return [(locator, problem.type)]


def due_month_of(task: Any, tz: str) -> str:
    """A task's due month as the file writes it (YYYY-MM on the business calendar)."""
    return business_date(task.due_at, tz).isoformat()[:7]


def _find_task(row: SurveyImportRow, named: dict[str, Any], of_participant: dict[str, list[Any]], tz: str) -> Any:
    """The row's task among those the uploader reaches, or the rule that refuses the row."""
    if row.task_id:
        task = named.get(row.task_id)
        if task is None:
            return "task_not_found"
        if row.participant_id and row.participant_id != task.participant_id:
            return "task_participant_mismatch"
        return task
    if not row.participant_id:
        return "task_id_or_participant_id_required"
    found = [
        t
        for t in of_participant.get(row.participant_id, [])
        if t.kind == row.kind
        and (row.wave is None or t.wave == row.wave)
        and (row.due_month is None or due_month_of(t, tz) == row.due_month)
    ]
    if len(found) > 1:
        found = [t for t in found if t.status != "cancelled"] or found[:1]
    if not found:
        return "task_not_found"
    if len(found) > 1:
        return "task_ambiguous"
    return found[0]


def _same_visit(survey: Mapping[str, Any], data: SurveyCreate) -> bool:
    """The row is the survey in force (a re-uploaded file): same visit date, respondent and indicators."""
    indicators = data.indicators().model_dump()
    return (
        survey["visit_date"] == data.visit_date
        and survey["respondent"] == data.respondent
        and all(survey[name] == value for name, value in indicators.items())
    )


async def process_chunk(session: AsyncSession, ctx: ImportContext, rows: Rows) -> ChunkResult:
    """One chunk of survey rows, in the import job's transaction (see the module's docstring)."""
    outcome = ChunkResult()
    tz = ctx.settings.business_timezone
    parsed: list[tuple[int, SurveyImportRow]] = []
    for number, cells in rows:
        try:
            parsed.append((number, SurveyImportRow.model_validate(_values(cells))))
        except ValidationError as exc:
            outcome.refused[number] = _validation_errors(exc)
    reach = reach_of(ctx.actor)
    # the tasks the rows name, read once; out of reach answered like missing ones
    candidates = await queries.tasks_named(
        session,
        task_ids={r.task_id for _, r in parsed if r.task_id},
        participant_ids={r.participant_id for _, r in parsed if r.participant_id and not r.task_id},
    )
    reachable = [t for t in candidates if reaches(reach, t)]
    named = {t.id: t for t in reachable}
    of_participant: dict[str, list[Any]] = {}
    for task in reachable:
        of_participant.setdefault(task.participant_id, []).append(task)
    located: list[tuple[int, SurveyImportRow, str]] = []
    for number, row in parsed:
        found = _find_task(row, named, of_participant, tz)
        if isinstance(found, str):
            outcome.refused[number] = [(row.locator, found)]
        else:
            located.append((number, row, found.id))
    # as a single survey does: the tasks' due/overdue jobs first (the scheduler's order), then the tasks
    task_ids = {task_id for _, _, task_id in located}
    await lock_jobs(session, sorted(key for t in task_ids for key in (due_job_key(t), overdue_job_key(t))))
    tasks = {t.id: t for t in await queries.lock_tasks(session, task_ids)}
    baselines = await queries.baselines_of(session, {t.participant_id for t in tasks.values()})
    in_force = await queries.surveys_in_force(session, list(tasks.values()))
    now = ctx.clock.now()
    new_surveys: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    surveyed: dict[str, MonevTask] = {}
    for number, row, task_id in located:
        task = tasks[task_id]
        if not reaches(reach, task):  # reassigned since the first read
            outcome.refused[number] = [(row.locator, "task_not_found")]
            continue
        data = row.survey()
        current = in_force.get(task.id)
        if current is not None and _same_visit(current, data):
            outcome.duplicates += 1
            continue
        try:
            early = surveys.check_submission(task, data, principal=ctx.actor, clock=ctx.clock, settings=ctx.settings)
        except Problem as problem:
            outcome.refused[number] = _problem_errors(problem, row.locator)
            continue
        survey, indicators, result = surveys.new_survey(
            task,
            data,
            early=early,
            baseline=baselines.get(task.participant_id),
            submitted_by=ctx.actor.subject,
            settings=ctx.settings,
            now=now,
        )
        new_surveys.append(survey)
        completed = surveys.completed_event(task, survey, indicators=indicators, result=result, now=now)
        events.append(outbox_row("monev.completed", completed, subject=task.participant_id, time=now)[1])
        audits.append(surveys.survey_audit(task, survey, actor=ctx.actor, details={"import_id": ctx.import_id}))
        # a later row of this chunk for the same task sees this version (a correction, or a duplicate)
        task.submission_version = survey["version"]
        task.status = "done"
        task.done_at = task.done_at or now
        task.updated_at = now
        in_force[task.id] = survey
        surveyed[task.id] = task
        outcome.created += 1
    await queries.insert_surveys(session, new_surveys)
    await queries.complete_tasks(
        session,
        [
            {
                "id": t.id,
                "status": t.status,
                "submission_version": t.submission_version,
                "done_at": t.done_at,
                "updated_at": t.updated_at,
            }
            for t in surveyed.values()
        ],
    )
    # a survey makes both announcements pointless, as for a single survey
    await cancel_jobs(session, [key for t in surveyed for key in (due_job_key(t), overdue_job_key(t))], now)
    await emit_rows(session, events)
    await record_audits(session, audits)
    return outcome


SURVEYS = ImportKind(
    name=KIND_NAME,
    path="surveys",
    layout=layout(),
    process=process_chunk,
    example=EXAMPLE,
    description="Monev survey results",
    audit_action="monev.survey.import",
    audit_subject="monev_import",
)
KINDS = [SURVEYS]
