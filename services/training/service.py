"""Use cases of the training service. Keyword-only async functions taking the session; they never
commit (the request dependency or the consumer runner owns the transaction)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.contracts import BatchScheduled, TrainingCompleted, TrainingDropped, TrainingEnrolled
from pena.ids import new_id
from pena.outbox import emit
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, field_error, not_found
from services.training import queries
from services.training.models import Attendance, Batch, BatchSession, Enrolment, TrainingCentre
from services.training.reference import (
    ATTENDANCE_STATUSES,
    BUSINESS_FIELDS,
    ENROLLABLE_PARTICIPANT_STATUSES,
    ENROLMENT_OPEN_STATUSES,
    MODULES,
    TRANSITIONS,
)
from services.training.schemas import (
    AttendanceIn,
    AttendanceRead,
    BatchCreate,
    BatchRead,
    BatchSummary,
    CentreCreate,
    CentreRead,
    CloseResult,
    Outcome,
    Roster,
    RosterEntry,
    SessionRead,
)

# ------------------------------------------------------------------ who sees what


def centre_scope(principal: Principal) -> str | None:
    """The one centre a caller is limited to, or None for callers who see every centre
    (admin, and read-only integrators). A centre operator without a unit sees nothing."""
    if principal.is_admin or not principal.has_role("centre_operator"):
        return None
    if not principal.unit:
        raise Problem(403, "Forbidden", "a centre operator token must carry the centre id as unit", type_="forbidden")
    return principal.unit


def _visible(principal: Principal, centre_id: str) -> bool:
    scope = centre_scope(principal)
    return scope is None or scope == centre_id


async def load_batch(session: AsyncSession, *, principal: Principal, batch_id: str, for_update: bool = False) -> Batch:
    """The batch if the caller may see it; another centre's batch is reported as missing (no leak)."""
    batch = await queries.batch_by_id(session, batch_id, for_update=for_update)
    if batch is None or not _visible(principal, batch.centre_id):
        raise not_found("batch", batch_id)
    return batch


# ------------------------------------------------------------------ centres


async def create_centre(
    session: AsyncSession, *, principal: Principal, clock: Clock, data: CentreCreate
) -> TrainingCentre:
    principal.require("training:admin")
    existing = await queries.centre_by_code(session, data.code)
    if existing is not None:
        raise Problem(
            409,
            "Conflict",
            f"a centre with code {data.code} exists",
            type_="centre_code_taken",
            existing_id=existing.id,
        )
    centre = TrainingCentre(
        id=new_id(),
        name=data.name,
        code=data.code,
        region_code=data.region_code,
        operators=sorted(set(data.operators)),
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(centre)
            await session.flush()
    except IntegrityError as exc:  # a concurrent create with the same code won
        raise Problem(409, "Conflict", f"a centre with code {data.code} exists", type_="centre_code_taken") from exc
    await record_audit(
        session, actor=principal, action="training.centre.created", subject_type="training_centre", subject_id=centre.id
    )
    return centre


async def get_centre(session: AsyncSession, *, principal: Principal, centre_id: str) -> TrainingCentre:
    centre = await queries.centre_by_id(session, centre_id)
    if centre is None or not _visible(principal, centre.id):
        raise not_found("training centre", centre_id)
    return centre


async def list_centres(
    session: AsyncSession, *, principal: Principal, region_prefix: str | None, page: PageRequest
) -> Page[CentreRead]:
    after = read_cursor(page, ("code", str))
    rows = await queries.list_centres(
        session,
        only_id=centre_scope(principal),
        region_prefix=region_prefix,
        after_code=after[0] if after else None,
        limit=page.limit,
    )
    return keyset_page(rows, page, key=lambda c: {"code": c.code}, item=centre_read)


def centre_read(centre: TrainingCentre) -> CentreRead:
    return CentreRead.model_validate(centre, from_attributes=True)


# ------------------------------------------------------------------ batches


def _validate_batch(data: BatchCreate) -> None:
    if data.business_field not in BUSINESS_FIELDS:
        raise field_error("business_field", "one_of", f"business_field must be one of {', '.join(BUSINESS_FIELDS)}")
    for i, module in enumerate(data.modules):
        if module not in MODULES:
            raise field_error(f"modules.{i}", "one_of", f"module must be one of {', '.join(MODULES)}")
    if data.end_date < data.start_date:
        raise field_error("end_date", "on_or_after_start_date", "end_date must not be before start_date")
    seen: set[tuple[date, str]] = set()
    for i, s in enumerate(data.sessions):
        if not data.start_date <= s.date <= data.end_date:
            raise field_error(f"sessions.{i}.date", "within_batch_dates", "session date must be within start..end")
        if s.module not in data.modules:
            raise field_error(f"sessions.{i}.module", "one_of_batch_modules", "session module must be a batch module")
        if (s.date, s.module) in seen:
            raise field_error(f"sessions.{i}", "unique", "the same module twice on one date")
        seen.add((s.date, s.module))


async def create_batch(session: AsyncSession, *, principal: Principal, clock: Clock, data: BatchCreate) -> Batch:
    centre = await queries.centre_by_id(session, data.centre_id)
    if centre is None or not _visible(principal, centre.id):
        raise not_found("training centre", data.centre_id)
    _validate_batch(data)
    now = clock.now()
    batch = Batch(
        id=new_id(),
        centre_id=centre.id,
        name=data.name,
        business_field=data.business_field,
        method=data.method,
        modules=list(dict.fromkeys(data.modules)),
        start_date=data.start_date,
        end_date=data.end_date,
        region_code=data.region_code,
        capacity=data.capacity,
        trainers=list(dict.fromkeys(data.trainers)),
        min_attendance_rate=data.min_attendance_rate,
        status="planned",
        created_at=now,
        updated_at=now,
    )
    session.add(batch)
    await session.flush()
    for s in data.sessions:
        session.add(BatchSession(id=new_id(), batch_id=batch.id, session_date=s.date, module=s.module))
    await session.flush()
    await emit(
        session,
        "training.batch_scheduled",
        BatchScheduled(
            batch_id=batch.id,
            centre_id=batch.centre_id,
            business_field=batch.business_field,
            method=batch.method,
            start_date=batch.start_date,
            end_date=batch.end_date,
            region_code=batch.region_code,
            capacity=batch.capacity,
        ),
        subject=batch.id,
        time=now,
    )
    await record_audit(
        session,
        actor=principal,
        action="training.batch.created",
        subject_type="batch",
        subject_id=batch.id,
        details={"centre_id": centre.id, "sessions": len(data.sessions), "backdated": data.start_date < now.date()},
    )
    return batch


async def batch_view(session: AsyncSession, batch: Batch) -> BatchRead:
    sessions = await queries.sessions_of(session, batch.id)
    return BatchRead(
        **batch.model_dump(exclude={"sessions"}),
        enrolled=await queries.enrolled_count(session, batch.id),
        sessions=[
            SessionRead(id=s.id, date=s.session_date, module=s.module, attendance_recorded_at=s.attendance_recorded_at)
            for s in sessions
        ],
    )


async def change_status(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, to: str, reason_code: str | None
) -> Batch:
    batch = await load_batch(session, principal=principal, batch_id=batch_id, for_update=True)
    if to == "completed" and batch.status == "running":
        raise Problem(
            409,
            "Conflict",
            "a batch is completed by closing it: POST /v1/batches/{id}/close computes the outcomes",
            type_="use_close",
        )
    if to not in TRANSITIONS[batch.status]:
        raise Problem(
            409,
            "Conflict",
            f"a batch cannot move from {batch.status} to {to}",
            type_="invalid_transition",
            from_status=batch.status,
            to_status=to,
            allowed=sorted(TRANSITIONS[batch.status] - {"completed"}),
        )
    now = clock.now()
    previous = batch.status
    if to == "cancelled":
        await _drop_all_enrolled(session, batch=batch, reason="batch_cancelled", when=now)
    batch.status = to
    batch.updated_at = now
    session.add(batch)
    await record_audit(
        session,
        actor=principal,
        action="training.batch.status_changed",
        subject_type="batch",
        subject_id=batch.id,
        details={"from": previous, "to": to, "reason_code": reason_code},
    )
    return batch


async def _drop_all_enrolled(session: AsyncSession, *, batch: Batch, reason: str, when: datetime) -> None:
    total = len(await queries.sessions_of(session, batch.id))
    attended = await queries.attended_counts(session, batch.id)
    for enrolment in await queries.enrolments_of(session, batch.id, status="enrolled"):
        count = attended.get(enrolment.participant_id, 0)
        _set_outcome(enrolment, status="dropped", reason=reason, when=when, attended=count, total=total)
        session.add(enrolment)
        await _emit_dropped(session, batch=batch, enrolment=enrolment, reason=reason, when=when)


def _rate(attended: int, total: int) -> float:
    return round(attended / total, 4) if total else 0.0


def _set_outcome(
    enrolment: Enrolment, *, status: str, reason: str | None, when: datetime, attended: int, total: int
) -> None:
    enrolment.status = status
    enrolment.outcome_reason = reason
    enrolment.outcome_at = when
    enrolment.sessions_attended = attended
    enrolment.attendance_rate = _rate(attended, total)


async def _emit_dropped(
    session: AsyncSession, *, batch: Batch, enrolment: Enrolment, reason: str, when: datetime
) -> None:
    await emit(
        session,
        "training.dropped",
        TrainingDropped(
            participant_id=enrolment.participant_id,
            batch_id=batch.id,
            centre_id=batch.centre_id,
            reason_code=reason,
            attendance_rate=enrolment.attendance_rate or 0.0,
            dropped_at=when,
        ),
        subject=enrolment.participant_id,
        time=when,
    )


# ------------------------------------------------------------------ enrolment


async def enrol(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, participant_id: str
) -> Enrolment:
    # the row lock makes concurrent enrolments in one batch take turns: the seat count cannot overshoot
    batch = await load_batch(session, principal=principal, batch_id=batch_id, for_update=True)
    if batch.status not in ENROLMENT_OPEN_STATUSES:
        raise Problem(
            409,
            "Conflict",
            f"enrolment needs a batch that is open or running; this one is {batch.status}",
            type_="enrolment_closed",
        )
    known = await queries.eligibility(session, participant_id)
    if known is None:
        raise Problem(
            422,
            "Participant unknown",
            "the participant registry has not announced this participant (yet); check the id or retry shortly",
            type_="participant_unknown",
            participant_id=participant_id,
        )
    if known.status not in ENROLLABLE_PARTICIPANT_STATUSES:
        raise Problem(
            422,
            "Participant not eligible",
            f"a participant with status {known.status} cannot enrol (candidate or active only)",
            type_="participant_not_eligible",
            participant_id=participant_id,
            participant_status=known.status,
        )
    existing = await queries.enrolment(session, batch.id, participant_id)
    if existing is not None:
        raise Problem(
            409,
            "Conflict",
            f"the participant is already enrolled in this batch (status {existing.status})",
            type_="already_enrolled",
            existing_id=existing.id,
        )
    if await queries.enrolled_count(session, batch.id) >= batch.capacity:
        raise Problem(409, "Conflict", f"the batch is full ({batch.capacity} seats)", type_="batch_full")
    now = clock.now()
    enrolment = Enrolment(
        id=new_id(), batch_id=batch.id, participant_id=participant_id, status="enrolled", enrolled_at=now
    )
    try:
        async with session.begin_nested():
            session.add(enrolment)
            await session.flush()
    except IntegrityError as exc:  # the unique constraint is the last word on double enrolment
        raise Problem(409, "Conflict", "the participant is already enrolled", type_="already_enrolled") from exc
    await emit(
        session,
        "training.enrolled",
        TrainingEnrolled(participant_id=participant_id, batch_id=batch.id, centre_id=batch.centre_id, enrolled_at=now),
        subject=participant_id,
        time=now,
    )
    await record_audit(
        session,
        actor=principal,
        action="training.enrolment.created",
        subject_type="participant",
        subject_id=participant_id,
        details={"batch_id": batch.id},
    )
    return enrolment


async def withdraw(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, participant_id: str, reason_code: str
) -> Enrolment:
    batch = await load_batch(session, principal=principal, batch_id=batch_id, for_update=True)
    enrolment = await queries.enrolment(session, batch.id, participant_id)
    if enrolment is None:
        raise not_found("enrolment", participant_id)
    if enrolment.status != "enrolled":
        raise Problem(409, "Conflict", f"the enrolment is already {enrolment.status}", type_="enrolment_not_active")
    if batch.status not in ENROLMENT_OPEN_STATUSES:
        raise Problem(409, "Conflict", f"the batch is {batch.status}", type_="enrolment_closed")
    now = clock.now()
    total = len(await queries.sessions_of(session, batch.id))
    attended = (await queries.attended_counts(session, batch.id)).get(participant_id, 0)
    _set_outcome(enrolment, status="withdrawn", reason=reason_code, when=now, attended=attended, total=total)
    session.add(enrolment)
    # the contract's reason is "withdrawn"; the caller's finer code stays in the enrolment and the audit
    await _emit_dropped(session, batch=batch, enrolment=enrolment, reason="withdrawn", when=now)
    await record_audit(
        session,
        actor=principal,
        action="training.enrolment.withdrawn",
        subject_type="participant",
        subject_id=participant_id,
        details={"batch_id": batch.id, "reason_code": reason_code},
    )
    return enrolment


# ------------------------------------------------------------------ attendance


async def _resolve_session(session: AsyncSession, *, batch: Batch, data: AttendanceIn) -> BatchSession:
    sessions = await queries.sessions_of(session, batch.id)
    if data.session_id:
        match = [s for s in sessions if s.id == data.session_id]
        if not match:
            raise field_error("session_id", "session_of_batch", "no session with this id in the batch")
        return match[0]
    if data.session_date is None:
        raise field_error("session_id", "required", "give session_id or session_date")
    match = [s for s in sessions if s.session_date == data.session_date]
    if not match:
        raise field_error("session_date", "session_of_batch", "the batch has no session on this date")
    if len(match) > 1:
        raise field_error("session_id", "required_when_ambiguous", "several sessions on this date: give session_id")
    return match[0]


async def record_attendance(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, data: AttendanceIn
) -> AttendanceRead:
    """Records who was present at one session; posting the same session again replaces it (a correction)."""
    batch = await load_batch(session, principal=principal, batch_id=batch_id, for_update=True)
    if batch.status not in ATTENDANCE_STATUSES:
        raise Problem(
            409,
            "Conflict",
            f"attendance is recorded while a batch runs; this one is {batch.status}",
            type_="attendance_closed",
        )
    target = await _resolve_session(session, batch=batch, data=data)
    now = clock.now()
    if target.session_date > now.date():
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
    await session.execute(delete(Attendance).where(Attendance.session_id == target.id))  # type: ignore[arg-type]
    if present:
        await session.execute(
            insert(Attendance),
            [{"session_id": target.id, "participant_id": p, "batch_id": batch.id} for p in sorted(present)],
        )
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


# ------------------------------------------------------------------ completion


@dataclass(frozen=True)
class CloseOutcome:
    result: CloseResult
    newly_closed: bool


def _meets_rule(attended: int, total: int, rule: float) -> bool:
    # compare counts, not floats: 8 of 10 meets 0.8 exactly
    return total > 0 and attended >= rule * total - 1e-9


def _close_result(batch: Batch, total: int, enrolments: list[Enrolment]) -> CloseResult:
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
    return CloseResult(
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
    batch = await load_batch(session, principal=principal, batch_id=batch_id, for_update=True)
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
    if when > now:
        raise field_error("completed_at", "not_in_future", "completed_at must not be in the future")
    last_session = max(s.session_date for s in sessions)
    if when.date() < last_session:
        raise field_error("completed_at", "after_last_session", f"completed_at must be on or after {last_session}")
    attended = await queries.attended_counts(session, batch.id)
    completed = dropped = 0
    for enrolment in await queries.enrolments_of(session, batch.id, status="enrolled"):
        count = attended.get(enrolment.participant_id, 0)
        if _meets_rule(count, total, batch.min_attendance_rate):
            _set_outcome(enrolment, status="completed", reason=None, when=when, attended=count, total=total)
            await emit(
                session,
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
            completed += 1
        else:
            _set_outcome(
                enrolment, status="dropped", reason="attendance_below_rule", when=when, attended=count, total=total
            )
            await _emit_dropped(session, batch=batch, enrolment=enrolment, reason="attendance_below_rule", when=when)
            dropped += 1
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
        details={
            "completed": completed,
            "dropped": dropped,
            "completed_at": when.isoformat(),
            "backdated": completed_at is not None,
        },
    )
    return CloseOutcome(_close_result(batch, total, await queries.enrolments_of(session, batch.id)), True)


# ------------------------------------------------------------------ roster


async def roster(session: AsyncSession, *, principal: Principal, batch_id: str) -> Roster:
    batch = await load_batch(session, principal=principal, batch_id=batch_id)
    total = len(await queries.sessions_of(session, batch.id))
    attended = await queries.attended_counts(session, batch.id)
    items = []
    for e in await queries.enrolments_of(session, batch.id):
        count = attended.get(e.participant_id, 0)
        items.append(
            RosterEntry(
                participant_id=e.participant_id,
                status=e.status,
                enrolled_at=e.enrolled_at,
                sessions_attended=count,
                sessions_total=total,
                attendance_rate=_rate(count, total),
                outcome_reason=e.outcome_reason,
                outcome_at=e.outcome_at,
            )
        )
    # who attended what is personal data of the participants: the read is audited
    await record_audit(
        session,
        actor=principal,
        action="training.roster.read",
        subject_type="batch",
        subject_id=batch.id,
        purpose="training administration",
        details={"participants": len(items)},
    )
    return Roster(
        batch_id=batch.id,
        status=batch.status,
        sessions_total=total,
        min_attendance_rate=batch.min_attendance_rate,
        items=items,
    )


# ------------------------------------------------------------------ lists


async def list_batches(
    session: AsyncSession,
    *,
    principal: Principal,
    centre_id: str | None,
    status: str | None,
    business_field: str | None,
    region_prefix: str | None,
    start_from: date | None,
    start_to: date | None,
    page: PageRequest,
) -> Page[BatchSummary]:
    """Batches by start date; a centre operator sees only their own centre's."""
    after = read_cursor(page, ("start", date), ("id", str))
    scope = centre_scope(principal)
    if scope is not None:
        if centre_id not in (None, scope):
            return Page(items=[], next_cursor=None, limit=page.limit)  # another centre: nothing to see
        centre_id = scope
    rows = await queries.list_batches(
        session,
        centre_id=centre_id,
        status=status,
        business_field=business_field,
        region_prefix=region_prefix,
        start_from=start_from,
        start_to=start_to,
        after=after,
        limit=page.limit,
    )
    return keyset_page(
        rows,
        page,
        key=lambda b: {"start": b.start_date, "id": b.id},
        item=lambda b: BatchSummary.model_validate(b, from_attributes=True),
    )
