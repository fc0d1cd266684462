"""Enrolment of a participant in a batch (who may enrol, the seat count under concurrency) and
withdrawal."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.contracts import TrainingEnrolled
from pena.ids import new_id
from pena.outbox import emit
from pena.problems import Problem, not_found
from services.training import queries
from services.training.models import Enrolment
from services.training.outcomes import emit_dropped, set_outcome
from services.training.reference import ENROLLABLE_PARTICIPANT_STATUSES, ENROLMENT_OPEN_STATUSES
from services.training.visibility import load_batch


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
    set_outcome(enrolment, status="withdrawn", reason=reason_code, when=now, attended=attended, total=total)
    session.add(enrolment)
    # the contract's reason is "withdrawn"; the caller's finer code stays in the enrolment and the audit
    await emit_dropped(session, batch=batch, enrolment=enrolment, reason="withdrawn", when=now)
    await record_audit(
        session,
        actor=principal,
        action="training.enrolment.withdrawn",
        subject_type="participant",
        subject_id=participant_id,
        details={"batch_id": batch.id, "reason_code": reason_code},
    )
    return enrolment
