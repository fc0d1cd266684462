"""Closing a running batch: each enrolled participant's outcome by the attendance rule, computed once
(training.completed or training.dropped), and the stored result for a second close."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.contracts import TrainingCompleted
from pena.outbox import emit_rows, outbox_row
from pena.problems import Problem, field_error
from services.training import queries
from services.training.models import Batch, Enrolment
from services.training.outcomes import dropped_row, set_outcome
from services.training.schemas import CloseResultRead, Outcome
from services.training.visibility import load_batch


@dataclass(frozen=True)
class CloseOutcome:
    result: CloseResultRead
    newly_closed: bool


def _meets_rule(attended: int, total: int, rule: float) -> bool:
    # compare counts, not floats: 8 of 10 meets 0.8 exactly
    return total > 0 and attended >= rule * total - 1e-9


def close_errors(*, now: datetime, when: datetime, last_session: date) -> list[tuple[str, str, str]]:
    """The rules a (backdated) completion time meets: the API's close and the completions import."""
    if when > now:
        return [("completed_at", "not_in_future", "completed_at must not be in the future")]
    if when.date() < last_session:
        return [("completed_at", "after_last_session", f"completed_at must be on or after {last_session}")]
    return []


def decide_outcomes(
    batch: Batch, enrolled: list[Enrolment], attended: dict[str, int], *, total: int, when: datetime, now: datetime
) -> tuple[int, int, list[dict[str, Any]]]:
    """Each enrolled participant's outcome by the batch's attendance rule (set on the enrolments), and
    the outbox rows announcing them: (completed, dropped, rows)."""
    completed = dropped = 0
    rows: list[dict[str, Any]] = []
    for enrolment in enrolled:
        count = attended.get(enrolment.participant_id, 0)
        if _meets_rule(count, total, batch.min_attendance_rate):
            set_outcome(enrolment, status="completed", reason=None, when=when, attended=count, total=total)
            _, row = outbox_row(
                "training.completed",
                TrainingCompleted(
                    participant_id=enrolment.participant_id,
                    batch_id=batch.id,
                    centre_id=batch.centre_id,
                    business_field=batch.business_field,
                    region_code=batch.region_code,
                    completed_at=when,
                    attendance_rate=enrolment.attendance_rate or 0.0,
                    sessions_attended=count,
                    sessions_total=total,
                ),
                subject=enrolment.participant_id,
                time=now,
            )
            rows.append(row)
            completed += 1
        else:
            set_outcome(
                enrolment, status="dropped", reason="attendance_below_rule", when=when, attended=count, total=total
            )
            rows.append(dropped_row(batch, enrolment, reason="attendance_below_rule", when=when))
            dropped += 1
    return completed, dropped, rows


def closed_audit_details(completed: int, dropped: int, when: datetime, *, backdated: bool) -> dict[str, Any]:
    """The `training.batch.closed` audit row's details, for the route and the backfill alike."""
    return {"completed": completed, "dropped": dropped, "completed_at": when.isoformat(), "backdated": backdated}


def _close_result(batch: Batch, total: int, enrolments: list[Enrolment]) -> CloseResultRead:
    assert batch.completed_at is not None
    outcomes = [
        Outcome(
            participant_id=e.participant_id,
            outcome="completed" if e.status == "completed" else "dropped",
            sessions_attended=e.sessions_attended or 0,
            sessions_total=total,
            attendance_rate=e.attendance_rate or 0.0,
        )
        for e in enrolments
        if e.status == "completed" or e.outcome_reason == "attendance_below_rule"
    ]
    return CloseResultRead(
        batch_id=batch.id,
        status=batch.status,
        completed_at=batch.completed_at,
        min_attendance_rate=batch.min_attendance_rate,
        sessions_total=total,
        outcomes=outcomes,
    )


async def close_batch(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, completed_at: datetime | None
) -> CloseOutcome:
    """Computes each enrolled participant's outcome once. Closing a completed batch again returns the
    stored result and emits nothing."""
    batch = await load_batch(session, reach=reach_of(principal), batch_id=batch_id, for_update=True)
    sessions = await queries.sessions_of(session, batch.id)
    total = len(sessions)
    if batch.status == "completed":
        return CloseOutcome(_close_result(batch, total, await queries.enrolments_of(session, batch.id)), False)
    if batch.status != "running":
        raise Problem(
            409,
            "Conflict",
            f"only a running batch can be closed; this one is {batch.status}",
            type_="invalid_transition",
            from_status=batch.status,
            to_status="completed",
        )
    if total == 0:
        raise Problem(409, "Conflict", "the batch has no sessions: nothing to measure", type_="no_sessions")
    now = clock.now()
    when = completed_at or now
    if errors := close_errors(now=now, when=when, last_session=max(s.session_date for s in sessions)):
        raise field_error(*errors[0])
    attended = await queries.attended_counts(session, batch.id)
    enrolled = await queries.enrolments_of(session, batch.id, status="enrolled")
    completed, dropped, events = decide_outcomes(batch, enrolled, attended, total=total, when=when, now=now)
    await emit_rows(session, events)
    for enrolment in enrolled:
        session.add(enrolment)
    batch.status = "completed"
    batch.completed_at = when
    batch.updated_at = now
    session.add(batch)
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action="training.batch.closed",
        subject_type="batch",
        subject_id=batch.id,
        details=closed_audit_details(completed, dropped, when, backdated=completed_at is not None),
    )
    return CloseOutcome(_close_result(batch, total, await queries.enrolments_of(session, batch.id)), True)
