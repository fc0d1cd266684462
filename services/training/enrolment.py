"""Enrolment of a participant in a batch (who may enrol: the regions the centre serves, the entry rules
of the policy version in force (entry_rules.py), an admin's audited override of either; the seat count
under concurrency) and withdrawal."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, covers_region, reach_of, region_code
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock, business_date
from pena.contracts import TrainingEnrolled
from pena.ids import new_id
from pena.outbox import emit
from pena.problems import Problem, field_error, not_found
from services.training import queries
from services.training.entry_rules import entry_rules_problem, failed_rules, no_policy_problem
from services.training.models import Batch, EligibleParticipant, Enrolment, EntryPolicy, TrainingCentre
from services.training.outcomes import emit_dropped, set_outcome
from services.training.reference import ENROLLABLE_PARTICIPANT_STATUSES, ENROLMENT_OPEN_STATUSES
from services.training.visibility import load_batch

IDENTITY_NUMBER = re.compile(r"\d{16}")
"""A NIK or KK number (16 digits) written into a free-text reason."""


def centre_serves(centre: TrainingCentre, participant_region: str | None) -> bool:
    """A centre serves the participants whose (registry) region code starts with the centre's region
    code: a centre of Kota Padang (`1371`) serves every village of 13.71, a provincial centre (`13`)
    all of West Sumatra. Decided by the kernel's region check, so it fails closed: an unknown region
    (a status change seen before the registration) or a code that does not parse is served by no centre."""
    return covers_region(Reach("region", region=region_code(centre.region_code)), participant_region)


def _participant_unknown(participant_id: str) -> Problem:
    """The one answer for an id the caller cannot see: never registered (or not announced yet), or
    living outside the regions the batch's centre serves. It names neither which nor any status."""
    message = "no participant with this id is known in the regions this centre serves"
    return Problem(
        422,
        "Participant unknown",
        f"{message}; check the id, or retry shortly if the registry has only just registered them",
        type_="participant_unknown",
        errors=[{"field": "participant_id", "rule": "known_in_centre_regions", "message": message}],
        participant_id=participant_id,
    )


def check_override(principal: Principal, override_reason: str | None) -> None:
    if override_reason is None:
        return
    if not principal.has("training:admin"):
        raise Problem(
            403,
            "Forbidden",
            "only an admin may override (override_reason): enrol a participant from outside the centre's "
            "regions or despite failed entry rules",
            type_="override_not_allowed",
        )
    if IDENTITY_NUMBER.search(override_reason):
        raise field_error(
            "override_reason", "no_identity_number", "the reason must not hold a NIK or KK number (16 digits)"
        )


@dataclass(frozen=True)
class Admission:
    """A participant admitted to a batch: whether the centre serves them, the policy checked and the
    entry rules an admin overrode."""

    served: bool
    policy: EntryPolicy
    overridden: list[str]


def admit(
    *,
    reach: Reach,
    batch: Batch,
    centre: TrainingCentre | None,
    known: EligibleParticipant | None,
    participant_id: str,
    override_reason: str | None,
    exit_agreement: bool,
    policy: EntryPolicy | None,
    on: date,
    existing: Enrolment | None,
    seats_taken: int,
) -> Admission:
    """The enrolment rules, in the order the API reports them (one place for the single enrolment and
    the enrolments import): raises the Problem of the first rule refused."""
    if batch.status not in ENROLMENT_OPEN_STATUSES:
        raise Problem(
            409,
            "Conflict",
            f"enrolment needs a batch that is open or running; this one is {batch.status}",
            type_="enrolment_closed",
        )
    served = known is not None and centre is not None and centre_serves(centre, known.region_code)
    # who may see a participant here: national reach, or the centre's own regions
    if known is None or not (served or reach.is_national):
        raise _participant_unknown(participant_id)
    if known.status not in ENROLLABLE_PARTICIPANT_STATUSES:
        raise Problem(
            422,
            "Participant not eligible",
            f"a participant with status {known.status} cannot enrol (candidate or active only)",
            type_="participant_not_eligible",
            participant_id=participant_id,
            participant_status=known.status,
        )
    if not served and override_reason is None:
        raise field_error(
            "override_reason",
            "required_out_of_region",
            "the participant lives outside the regions this centre serves: an admin enrols them only with a reason",
        )
    if policy is None:
        raise no_policy_problem(on)
    failed = failed_rules(policy, known, exit_agreement=exit_agreement, on=on)
    if failed and override_reason is None:
        raise entry_rules_problem(policy, failed, participant_id)
    if existing is not None:
        raise Problem(
            409,
            "Conflict",
            f"the participant is already enrolled in this batch (status {existing.status})",
            type_="already_enrolled",
            existing_id=existing.id,
        )
    if seats_taken >= batch.capacity:
        raise Problem(409, "Conflict", f"the batch is full ({batch.capacity} seats)", type_="batch_full")
    return Admission(served=served, policy=policy, overridden=list(dict.fromkeys(e["rule"] for e in failed)))


def enrolment_audit_details(
    batch: Batch, centre: TrainingCentre | None, admission: Admission, override_reason: str | None
) -> dict[str, Any]:
    details: dict[str, Any] = {"batch_id": batch.id, "policy_version": admission.policy.version}
    if not admission.served:  # the admin's override, with its reason
        details |= {
            "out_of_region": True,
            "override_reason": override_reason,
            "centre_region": centre.region_code if centre else None,
        }
    if admission.overridden:  # the admin enrolled despite failed entry rules: which, and why
        details |= {"entry_rules_overridden": admission.overridden, "override_reason": override_reason}
    return details


def enrolled_event(batch: Batch, participant_id: str, when: datetime) -> TrainingEnrolled:
    return TrainingEnrolled(
        participant_id=participant_id, batch_id=batch.id, centre_id=batch.centre_id, enrolled_at=when
    )


async def enrol(
    session: AsyncSession,
    *,
    principal: Principal,
    clock: Clock,
    batch_id: str,
    participant_id: str,
    override_reason: str | None = None,
    exit_agreement: bool = False,
    business_timezone: str,
) -> Enrolment:
    """Enrols a participant of the regions the batch's centre serves who meets the entry rules of the
    policy in force; an admin may enrol one from elsewhere, or one failing entry rules, with an
    `override_reason` (audited with the rules overridden). Whether an id outside the caller's sight
    exists, and its status, is never told: see `_participant_unknown`."""
    check_override(principal, override_reason)
    now = clock.now()
    reach = reach_of(principal)
    # the row lock makes concurrent enrolments in one batch take turns: the seat count cannot overshoot
    batch = await load_batch(session, reach=reach, batch_id=batch_id, for_update=True)
    on = business_date(now, business_timezone)
    admission = admit(
        reach=reach,
        batch=batch,
        centre=(centre := await queries.centre_by_id(session, batch.centre_id)),
        known=await queries.eligibility(session, participant_id),
        participant_id=participant_id,
        override_reason=override_reason,
        exit_agreement=exit_agreement,
        policy=await queries.entry_policy_in_force(session, on),
        on=on,
        existing=await queries.enrolment(session, batch.id, participant_id),
        seats_taken=await queries.enrolled_count(session, batch.id),
    )
    enrolment = Enrolment(
        id=new_id(),
        batch_id=batch.id,
        participant_id=participant_id,
        status="enrolled",
        enrolled_at=now,
        policy_version=admission.policy.version,
        exit_agreement=exit_agreement,
        overridden_rules=admission.overridden,
    )
    try:
        async with session.begin_nested():
            session.add(enrolment)
            await session.flush()
    except IntegrityError as exc:  # the unique constraint is the last word on double enrolment
        raise Problem(409, "Conflict", "the participant is already enrolled", type_="already_enrolled") from exc
    event = enrolled_event(batch, participant_id, now)
    await emit(session, "training.enrolled", event, subject=participant_id, time=now)
    await record_audit(
        session,
        actor=principal,
        action="training.enrolment.created",
        subject_type="participant",
        subject_id=participant_id,
        details=enrolment_audit_details(batch, centre, admission, override_reason),
    )
    return enrolment


async def withdraw(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, participant_id: str, reason_code: str
) -> Enrolment:
    batch = await load_batch(session, reach=reach_of(principal), batch_id=batch_id, for_update=True)
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
