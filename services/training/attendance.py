"""Attendance: who was present at one session of a running batch (posting it again is a correction)."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.problems import Problem, field_error
from services.training import queries
from services.training.models import BatchSession
from services.training.reference import ATTENDANCE_STATUSES
from services.training.schemas import AttendanceCommand, AttendanceRead
from services.training.visibility import load_batch


def pick_session(sessions: list[BatchSession], *, session_id: str | None, session_date: date | None) -> BatchSession:
    """The session an attendance record names, by id or by date (the API's and the import's rule)."""
    if session_id:
        match = [s for s in sessions if s.id == session_id]
        if not match:
            raise field_error("session_id", "session_of_batch", "no session with this id in the batch")
        return match[0]
    if session_date is None:
        raise field_error("session_id", "required", "give session_id or session_date")
    match = [s for s in sessions if s.session_date == session_date]
    if not match:
        raise field_error("session_date", "session_of_batch", "the batch has no session on this date")
    if len(match) > 1:
        raise field_error("session_id", "required_when_ambiguous", "several sessions on this date: give session_id")
    return match[0]


def session_in_future(day: date, now: datetime) -> bool:
    """Attendance of a session after today (by the service clock) cannot be recorded."""
    return day > now.date()


async def record_attendance(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, data: AttendanceCommand
) -> AttendanceRead:
    """Records who was present at one session; posting the same session again replaces it (a correction)."""
    batch = await load_batch(session, reach=reach_of(principal), batch_id=batch_id, for_update=True)
    if batch.status not in ATTENDANCE_STATUSES:
        raise Problem(
            409,
            "Conflict",
            f"attendance is recorded while a batch runs; this one is {batch.status}",
            type_="attendance_closed",
        )
    sessions = await queries.sessions_of(session, batch.id)
    target = pick_session(sessions, session_id=data.session_id, session_date=data.session_date)
    now = clock.now()
    if session_in_future(target.session_date, now):
        raise field_error("session_date", "not_in_future", "attendance of a future session cannot be recorded")
    enrolled = {e.participant_id for e in await queries.enrolments_of(session, batch.id, status="enrolled")}
    present = set(data.present)
    strangers = sorted(present - enrolled)
    if strangers:
        problem = field_error(
            "present", "enrolled_participant", f"{len(strangers)} id(s) are not enrolled in this batch"
        )
        problem.extra["not_enrolled"] = strangers[:50]
        raise problem
    previous = await queries.present_in_session(session, target.id)
    corrected = target.attendance_recorded_at is not None
    await queries.replace_attendance(session, batch_id=batch.id, session_id=target.id, present=sorted(present))
    target.attendance_recorded_at = now
    session.add(target)
    await record_audit(
        session,
        actor=principal,
        action="training.attendance.corrected" if corrected else "training.attendance.recorded",
        subject_type="batch_session",
        subject_id=target.id,
        details={
            "batch_id": batch.id,
            "session_date": target.session_date.isoformat(),
            "old_present": len(previous) if corrected else None,
            "new_present": len(present),
            "added": len(present - previous),
            "removed": len(previous - present),
        },
    )
    return AttendanceRead(
        session_id=target.id,
        session_date=target.session_date,
        module=target.module,
        present=len(present),
        absent=len(enrolled - present),
        corrected=corrected,
        recorded_at=now,
    )
