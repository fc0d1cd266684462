"""Follow-up tasks from training completions (set-based, for a whole batch of events) and the due and
overdue announcements the scheduler runs. Use cases never commit (the consumer runner or the scheduler
owns the transaction)."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audits
from pena.clock import Clock, business_time
from pena.context import current_causation_id, current_correlation_id, current_traceparent
from pena.contracts import MonevOverdue, TrainingCompleted
from pena.durations import add_duration, parse_duration
from pena.ids import new_id
from pena.outbox import emit_rows, envelope_template, event_row
from pena.scheduler import cancel_job, lock_jobs
from pena.settings import Settings
from services.monev import queries
from services.monev.settings import MonevSettings

DUE_JOB = "monev.due"
OVERDUE_JOB = "monev.overdue"
AUTO_ASSIGNED = "auto:region"
FOLLOW_UP = "follow_up"
MENTORING = "mentoring"


def due_job_key(task_id: str) -> str:
    return f"{DUE_JOB}:{task_id}"


def overdue_job_key(task_id: str) -> str:
    return f"{OVERDUE_JOB}:{task_id}"


@lru_cache(maxsize=4096)  # a batch's participants complete together: one computation per batch and wave
def due_time(completed_at: datetime, wave: str, business_timezone: str) -> datetime:
    """Calendar months are counted on the business calendar (WIB by default), so a completion on the
    evening of 30 November local time is due at the end of February, not on 1 March."""
    return add_duration(business_time(completed_at, business_timezone), wave)


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
                    "kind": FOLLOW_UP,
                    "decision_id": None,
                    "training_completed_at": completion.completed_at,
                    "due_at": due_time(completion.completed_at, wave, settings.business_timezone),
                    "assignee": assignee,
                },
            )
    created = await create_tasks(
        session,
        [(row, completions[index][1]) for index, row in planned.values()],
        settings=settings,
        monev_settings=monev_settings,
        now=now,
    )
    return [task_id for task_id in planned if task_id in created]


CONTEXT_KEYS = ("correlationid", "causationid", "traceparent")


async def create_tasks(
    session: AsyncSession,
    tasks: list[tuple[dict[str, Any], Callable[[], AbstractContextManager[None]]]],
    *,
    settings: Settings,
    monev_settings: MonevSettings,
    now: datetime,
) -> set[str]:
    """Stores new tasks (follow-up or mentoring, the same machinery) and, for each one stored (not
    already there for its participant, batch and wave or its decision and wave), its due job,
    `monev.scheduled` and the audit row, written in the context of the event that created it: one
    statement for all of them (queries.create_tasks). Returns the ids of the tasks stored."""
    contexts: list[queries.TaskContext] = []
    last: tuple[Callable[[], AbstractContextManager[None]] | None, queries.TaskContext] = (None, (None, None, None))
    for _, in_context in tasks:
        if in_context is not last[0]:  # the waves of one completion share its context
            with in_context():
                last = (in_context, (current_correlation_id(), current_causation_id(), current_traceparent()))
        contexts.append(last[1])
    template = envelope_template("monev.scheduled", time=now)
    return await queries.create_tasks(
        session,
        [task for task, _ in tasks],
        contexts,
        now=now,
        assigned_by=AUTO_ASSIGNED,
        # the grace period and zone travel with the job: job handlers receive no settings
        job={
            "kind": DUE_JOB,
            "key_prefix": due_job_key(""),
            "payload": {"grace": monev_settings.monev_grace, "timezone": settings.business_timezone},
        },
        event=("monev.scheduled", {k: v for k, v in template.items() if k not in CONTEXT_KEYS}),
        audit=audit_row(actor=None, action="monev.task.scheduled", subject_type="monev_task", subject_id=None),
    )


DueJob = tuple[str, str, str]  # (task id, grace period, business timezone) of a monev.due job


async def announce_due(session: AsyncSession, *, jobs: list[DueJob], clock: Clock) -> list[str]:
    """Job, set-based for many jobs: the tasks came due. Marks them, announces them (monev.due) and
    schedules their overdue checks, in one statement for all of them (queries.announce_due_tasks). A
    task no longer scheduled (survey submitted right at due time, or already announced) is left alone.
    Returns the ids announced."""
    now = clock.now()
    grace_of = {task_id: (grace, timezone) for task_id, grace, timezone in jobs}
    # the grace period counts from the announcement (backfilled tasks, due long ago, come due now);
    # a task is never announced before its due time, so that is now (checked below on each task);
    # computed once per grace period and zone of the pass
    overdue_at = {terms: add_duration(business_time(now, terms[1]), terms[0]) for terms in set(grace_of.values())}
    moved = await queries.announce_due_tasks(
        session,
        {task_id: overdue_at[terms] for task_id, terms in grace_of.items()},
        now=now,
        job={"kind": OVERDUE_JOB, "key_prefix": overdue_job_key("")},
        event=("monev.due", envelope_template("monev.due", time=now)),
        audit=_status_audit("monev.task.due", None, ""),
    )
    # a job run before its task's time (it cannot happen today): the grace period counts from due_at
    fixed = {
        task_id: add_duration(business_time(due_at, grace_of[task_id][1]), grace_of[task_id][0])
        for task_id, due_at in moved
        if due_at > now
    }
    if fixed:
        await queries.set_overdue_times(session, fixed, job_key_prefix=overdue_job_key(""))
    return [task_id for task_id, _ in moved]


async def announce_overdue(session: AsyncSession, *, task_ids: list[str], clock: Clock) -> list[str]:
    """Job, set-based for many jobs: the grace period passed without a survey. Tasks done in time
    (the job is normally cancelled then) or already overdue are left alone. Returns the ids announced."""
    now = clock.now()
    updates = [{"id": task_id, "status": "overdue", "updated_at": now} for task_id in dict.fromkeys(task_ids)]
    tasks = await queries.move_tasks(session, updates, from_status="due")
    events, audits = [], []
    for task in tasks:
        overdue = MonevOverdue(
            task_id=task.id,
            participant_id=task.participant_id,
            wave=task.wave,
            due_at=task.due_at,
            overdue_at=task.overdue_at,
            kind=task.kind,
        )
        events.append(event_row("monev.overdue", overdue, subject=task.participant_id, time=now))
        audits.append(_status_audit("monev.task.overdue", task.id, task.wave))
    await emit_rows(session, events)
    await record_audits(session, audits)
    return [task.id for task in tasks]


def _status_audit(action: str, task_id: str | None, wave: str) -> dict[str, Any]:
    """The audit entry of a status the scheduler gave a task (no actor: the system)."""
    return audit_row(actor=None, action=action, subject_type="monev_task", subject_id=task_id, details={"wave": wave})


async def cancel_tasks(
    session: AsyncSession, task_ids: list[str], *, reason: str, details: dict[str, Any], now: datetime
) -> list[str]:
    """Cancels those of the tasks still open with `reason` (exit, erasure, a reversed graduation) and
    their pending due/overdue jobs, one audit row each; returns the ids cancelled. The job rows are
    locked first, in the scheduler's order (a job being run is waited for)."""
    if not task_ids:
        return []
    await lock_jobs(session, [key for task_id in task_ids for key in (due_job_key(task_id), overdue_job_key(task_id))])
    cancelled = await queries.cancel_tasks(session, task_ids, reason=reason, now=now)
    for task_id in cancelled:
        await cancel_job(session, due_job_key(task_id), now)
        await cancel_job(session, overdue_job_key(task_id), now)
    await record_audits(
        session,
        [
            audit_row(
                actor=None,
                action="monev.task.cancelled",
                subject_type="monev_task",
                subject_id=task_id,
                details=details | {"reason": reason},
            )
            for task_id in cancelled
        ],
    )
    return cancelled
