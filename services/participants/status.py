"""Status moves: the status API (`change_status`) and the graduation decision handler
(`apply_graduation_decision`), both through `set_status` (version, history, audit, status_changed)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.consumer import PoisonEvent, RetryLater
from pena.contracts import GraduationDecided, ParticipantStatusChanged
from pena.outbox import emit
from pena.problems import field_error
from pena.settings import Settings
from services.participants import queries
from services.participants.changes import not_erased
from services.participants.etag import check_if_match
from services.participants.history import actor_name, record_change
from services.participants.models import Participant
from services.participants.reads import load_visible
from services.participants.schemas import StatusChangeCommand
from services.participants.settings import get_participants_settings

# candidate -> active -> graduated | exited; erased only through erasure. `graduated` (leaving social
# assistance, of whichever kind: sejahtera mandiri, alamiah, paksa) is reached only through the
# graduation process, i.e. the graduation.decided handler; an appeal that reverses a graduation sets
# it back to active, again only by that handler. `exited` leaves the PENA programme (moved away,
# withdrew), not assistance, and stays an administrative move.
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    "candidate": {"active", "exited"},
    "active": {"graduated", "exited"},
    "graduated": {"exited"},
    "exited": set(),
    "erased": set(),
}
BY_DECISION_ONLY = frozenset({"graduated"})
"""Statuses the status API refuses (422 `graduation_only_by_decision`): only a graduation decision
(the graduation.decided event) reaches them."""
GRADUATES_FROM = frozenset({"candidate", "active"})
"""A graduation applies to a participant still in the programme (training, monitoring, assessment:
registered as candidate or active); never to one who exited, was erased or graduated already."""
REVERSES_FROM = frozenset({"graduated"})
"""A reversal (appeal upheld against a graduation) applies to a graduated participant only."""


async def set_status(
    session: AsyncSession,
    participant: Participant,
    *,
    to_status: str,
    reason_code: str,
    reason: str | None,
    actor: Principal | None,
    settings: Settings,
    now: datetime,
) -> None:
    """Moves the status, bumps the version, records history and audit, announces status_changed."""
    from_status = participant.status
    participant.status = to_status
    participant.version += 1
    participant.updated_at = now
    session.add(participant)
    await record_change(
        session,
        participant,
        action="status_changed",
        actor=actor_name(actor),
        at=now,
        changed_fields=["status"],
        from_status=from_status,
        to_status=to_status,
        reason_code=reason_code,
        reason=reason,
    )
    await record_audit(
        session,
        actor=actor,
        action="participant.status",
        subject_type="participant",
        subject_id=participant.id,
        details={"from": from_status, "to": to_status, "reason_code": reason_code},
    )
    await emit(
        session,
        "participant.status_changed",
        ParticipantStatusChanged(
            participant_id=participant.id,
            version=participant.version,
            from_status=from_status,  # type: ignore[arg-type]
            to_status=to_status,  # type: ignore[arg-type]
            reason_code=reason_code,
            household_id=participant.household_id,
            kk_token=participant.kk_token,  # None once erased: the erasure event does not spread the token again
            changed_at=now,
        ),
        subject=participant.id,
        time=now,
    )


async def change_status(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    clock: Clock,
    participant_id: str,
    if_match: str | None,
    data: StatusChangeCommand,
) -> Participant:
    participant = await load_visible(session, principal=principal, participant_id=participant_id, for_update=True)
    if if_match:  # optional here: a status move is checked against the transition rules anyway
        check_if_match(participant, if_match)
    not_erased(participant)
    if data.status in BY_DECISION_ONLY:
        raise field_error(
            "status",
            "graduation_only_by_decision",
            f"{data.status} is reached only through the graduation process (assessment, verification,"
            " decision, appeal window), never through the status API",
        )
    if data.status not in ALLOWED_TRANSITIONS[participant.status]:
        raise field_error(
            "status",
            "transition_not_allowed",
            f"cannot move from {participant.status} to {data.status}",
            current_status=participant.status,
        )
    await set_status(
        session,
        participant,
        to_status=data.status,
        reason_code=data.reason_code,
        reason=data.reason,
        actor=principal,
        settings=settings,
        now=clock.now(),
    )
    return participant


async def apply_graduation_decision(
    session: AsyncSession, *, decision: GraduationDecided, settings: Settings, clock: Clock
) -> None:
    """graduation.decided: a graduation sets the status graduated, an appeal that reverses one sets it
    back to active. A decision older than the newest one applied is ignored (out-of-order arrival),
    and so is one for an erased participant; a decision for a participant not (yet) here is retried,
    then dead-lettered. A decision that does not fit (a `decided_at` beyond the allowed clock skew, a
    graduation of someone who exited, a reversal of someone not graduated) is refused: nothing is
    applied and the event goes to the dead letters with the reason (PoisonEvent)."""
    now = clock.now()
    skew = timedelta(seconds=get_participants_settings().decision_clock_skew_seconds)
    if decision.decided_at > now + skew:
        raise PoisonEvent(
            f"graduation decision {decision.decision_id} is dated in the future (decided_at beyond now +"
            f" {skew.total_seconds():.0f}s clock skew)"
        )
    participant = await queries.participant_by_id(session, decision.participant_id, for_update=True)
    if participant is None:
        raise RetryLater("graduation decided for a participant this registry does not hold (yet)")
    if participant.status == "erased":
        return
    last = participant.graduation_decided_at
    if last is not None and decision.decided_at < last:
        return  # a newer decision was already applied
    if decision.graduated:
        target, reason_code, allowed_from = "graduated", "graduation_decided", GRADUATES_FROM
    elif decision.outcome == "reversed":
        target, reason_code, allowed_from = "active", "graduation_reversed", REVERSES_FROM
    else:
        return  # rejected or deferred: the status stays as it is
    if participant.status != target and participant.status not in allowed_from:
        raise PoisonEvent(
            f"graduation decision {decision.decision_id} cannot move a participant from {participant.status}"
            f" to {target}"
        )
    participant.graduation_decided_at = decision.decided_at
    session.add(participant)
    if participant.status == target:
        return
    await set_status(
        session,
        participant,
        to_status=target,
        reason_code=reason_code,
        reason=f"graduation decision {decision.decision_id}",
        actor=None,
        settings=settings,
        now=now,
    )
