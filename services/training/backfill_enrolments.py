"""Backfill imports of enrolments and attendance (kinds `training.enrolments`, `training.attendance`):
the rules of POST /v1/batches/{id}/enrolments (`admit`, `check_override`: the single path's own rule
functions) and of POST /v1/batches/{id}/attendance (`pick_session`), checked per row against facts
loaded once per chunk (one statement each: batches locked, enrolments, eligibility, policies,
sessions, attendance), then written set-based (one INSERT or UPDATE per table).

An enrolment may carry `enrolled_on`, a past business date (a 2023 cohort loaded in 2026): the entry
policy in force and the participant's working age are then those of that date, as they were when the
family enrolled, and `training.enrolled` carries it as `enrolled_at`. Without it the enrolment is
dated now, as on the API. A row whose participant is already enrolled in the batch is a duplicate;
attendance a row already recorded (present and stored, or absent and not stored) is a duplicate."""

from __future__ import annotations

from collections import Counter
from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audits
from pena.clock import business_date
from pena.ids import new_id
from pena.import_runs import ChunkResult, ImportContext, Rows
from pena.outbox import emit_rows, outbox_row
from pena.problems import Problem
from services.training import queries
from services.training.attendance import pick_session, session_in_future
from services.training.backfill_rows import (
    Refusal,
    a_date,
    cell,
    flag,
    index_batches,
    moment,
    problem_errors,
    refuse,
    schema_errors,
    sessions_by_batch,
)
from services.training.enrolment import admit, check_override, enrolled_event, enrolment_audit_details
from services.training.models import BatchSession, EntryPolicy
from services.training.reference import ATTENDANCE_STATUSES
from services.training.schemas import EnrolmentCreate

# the column a refused rule points at when the single path's Problem names no field
_PROBLEM_COLUMNS = {
    "override_not_allowed": "override_reason",
    "enrolment_closed": "batch_ref",
    "batch_full": "batch_ref",
    "no_entry_policy": "enrolled_on",
}


def policy_on(policies: list[EntryPolicy], on: date) -> EntryPolicy | None:
    """The version in force on `on` (policies oldest first), as `queries.entry_policy_in_force` picks it."""
    found = None
    for policy in policies:
        if policy.effective_from <= on:
            found = policy
    return found


def _enrolment_command(row: dict[Any, Any]) -> EnrolmentCreate | Refusal:
    agreed = flag(row, "exit_agreement", default=False)
    if agreed is None:
        return [("exit_agreement", "bool_parsing")]
    try:
        return EnrolmentCreate.model_validate(
            {
                "participant_id": cell(row, "participant_id"),
                "exit_agreement": agreed,
                "override_reason": cell(row, "override_reason"),
            }
        )
    except ValidationError as exc:
        return schema_errors(exc)


async def process_enrolments(session: AsyncSession, ctx: ImportContext, rows: Rows) -> ChunkResult:
    result = ChunkResult()
    now = ctx.clock.now()
    tz = ctx.settings.business_timezone
    today = business_date(now, tz)
    index = await index_batches(session, ctx, rows, for_update=True)
    batch_ids = {b.id for b in index.batches.values()}
    present = await queries.enrolments_of_batches(session, batch_ids)
    enrolled = {(e.batch_id, e.participant_id) for e in present}
    seats = Counter(e.batch_id for e in present if e.status in ("enrolled", "completed"))
    wanted = {pid for _, row in rows if (pid := cell(row, "participant_id"))}
    known = {p.participant_id: p for p in await queries.eligibilities(session, wanted)}
    policies = await queries.entry_policies(session)
    new: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for number, row in rows:
        batch = index.batch(row)
        command = _enrolment_command(row)
        errors: Refusal = (batch if isinstance(batch, list) else []) + (command if isinstance(command, list) else [])
        try:
            enrolled_on = a_date(row, "enrolled_on")
        except ValueError:
            enrolled_on = None
            errors.append(("enrolled_on", "date_from_datetime_parsing"))
        if enrolled_on is not None and enrolled_on > today:
            errors.append(("enrolled_on", "not_in_future"))
        if errors or isinstance(batch, list) or isinstance(command, list):
            refuse(result, number, errors)
            continue
        if (batch.id, command.participant_id) in enrolled:
            result.duplicates += 1  # enrolled before (a re-uploaded file, or twice in this one)
            continue
        on = enrolled_on or today
        when = moment(on.isoformat(), tz) if enrolled_on else now
        try:
            check_override(ctx.actor, command.override_reason)
            admission = admit(
                reach=index.reach,
                batch=batch,
                centre=index.centre_of(batch),
                known=known.get(command.participant_id),
                participant_id=command.participant_id,
                override_reason=command.override_reason,
                exit_agreement=command.exit_agreement,
                policy=policy_on(policies, on),
                on=on,
                existing=None,
                seats_taken=seats[batch.id],
            )
        except Problem as problem:
            refuse(result, number, problem_errors(problem, _PROBLEM_COLUMNS.get(problem.type, "participant_id")))
            continue
        enrolled.add((batch.id, command.participant_id))
        seats[batch.id] += 1
        new.append(
            {
                "id": new_id(),
                "batch_id": batch.id,
                "participant_id": command.participant_id,
                "status": "enrolled",
                "enrolled_at": when,
                "policy_version": admission.policy.version,
                "exit_agreement": command.exit_agreement,
                "overridden_rules": admission.overridden,
            }
        )
        event = enrolled_event(batch, command.participant_id, when)
        events.append(outbox_row("training.enrolled", event, subject=command.participant_id, time=now)[1])
        details = enrolment_audit_details(batch, index.centre_of(batch), admission, command.override_reason)
        audits.append(
            audit_row(
                actor=ctx.actor,
                action="training.enrolment.created",
                subject_type="participant",
                subject_id=command.participant_id,
                details=details | {"enrolled_on": on.isoformat(), "import_id": ctx.import_id},
            )
        )
    inserted = await queries.insert_enrolments(session, new)
    kept = [i for i, row in enumerate(new) if row["id"] in inserted]  # all, unless enrolled concurrently
    result.created = len(kept)
    result.duplicates += len(new) - len(kept)
    await emit_rows(session, [events[i] for i in kept])
    await record_audits(session, [audits[i] for i in kept])
    return result


def _session_of(sessions: list[BatchSession], row: dict[Any, Any]) -> BatchSession | Refusal:
    try:
        day = a_date(row, "session_date")
    except ValueError:
        return [("session_date", "date_from_datetime_parsing")]
    if day is None:
        return [("session_date", "required")]
    module = cell(row, "module")
    candidates = [s for s in sessions if module is None or s.module == module]
    try:
        return pick_session(candidates, session_id=None, session_date=day)
    except Problem as problem:
        # several sessions that day: the file names the module (the API names the session id)
        return [("module" if f == "session_id" else f, r) for f, r in problem_errors(problem, "session_date")]


async def process_attendance(session: AsyncSession, ctx: ImportContext, rows: Rows) -> ChunkResult:
    result = ChunkResult()
    now = ctx.clock.now()
    index = await index_batches(session, ctx, rows, for_update=True)
    batch_ids = {b.id for b in index.batches.values()}
    sessions = await sessions_by_batch(session, batch_ids)
    enrolled = {
        (e.batch_id, e.participant_id)
        for e in await queries.enrolments_of_batches(session, batch_ids, status="enrolled")
    }
    before = await queries.attendance_in_sessions(session, {s.id for found in sessions.values() for s in found})
    after = set(before)
    touched: dict[str, BatchSession] = {}
    # a batch's ~8 sessions are named by thousands of rows: each (batch, date, module) looked up once
    picked: dict[tuple[str, str | None, str | None], BatchSession | Refusal] = {}
    for number, row in rows:
        batch = index.batch(row)
        if isinstance(batch, list):
            refuse(result, number, batch)
            continue
        named = (batch.id, cell(row, "session_date"), cell(row, "module"))
        target = picked.get(named)
        if target is None:
            target = picked[named] = _session_of(sessions.get(batch.id, []), row)
        participant_id = cell(row, "participant_id")
        present = flag(row, "present", default=True)
        errors: Refusal = list(target) if isinstance(target, list) else []
        if participant_id is None:
            errors.append(("participant_id", "required"))
        if present is None:
            errors.append(("present", "bool_parsing"))
        if errors or isinstance(target, list) or participant_id is None:
            refuse(result, number, errors)
            continue
        key = (target.id, participant_id)
        if present == (key in after):
            result.duplicates += 1  # recorded so already (a re-uploaded file): changes nothing
            continue
        if batch.status not in ATTENDANCE_STATUSES:
            errors.append(("batch_ref", "attendance_closed"))
        if session_in_future(target.session_date, now):
            errors.append(("session_date", "not_in_future"))
        if (batch.id, participant_id) not in enrolled:
            errors.append(("participant_id", "enrolled_participant"))
        if errors:
            refuse(result, number, errors)
            continue
        (after.add if present else after.discard)(key)
        touched[target.id] = target
        result.created += 1
    await queries.delete_attendance(session, sorted(before - after))
    batch_of = {s.id: s.batch_id for found in sessions.values() for s in found}
    await queries.insert_attendance(
        session,
        [{"session_id": s, "participant_id": p, "batch_id": batch_of[s]} for s, p in sorted(after - before)],
    )
    await queries.mark_attendance_recorded(session, sorted(touched), now)
    added = Counter(s for s, _ in after - before)
    removed = Counter(s for s, _ in before - after)
    audits = []
    for target in touched.values():
        corrected = target.attendance_recorded_at is not None
        audits.append(
            audit_row(
                actor=ctx.actor,
                action="training.attendance.corrected" if corrected else "training.attendance.recorded",
                subject_type="batch_session",
                subject_id=target.id,
                details={
                    "batch_id": target.batch_id,
                    "session_date": target.session_date.isoformat(),
                    "added": added[target.id],
                    "removed": removed[target.id],
                    "import_id": ctx.import_id,
                },
            )
        )
    await record_audits(session, audits)
    return result
