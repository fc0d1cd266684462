"""Consumed events. graduation.decided: a graduation sets the status graduated; an appeal that
reverses one sets it back to active. Either way participant.status_changed goes out.

Redelivery is a no-op (the kernel's inbox). A decision older than the newest one applied is ignored
(out-of-order arrival); a decision for a participant not (yet) here is retried, then dead-lettered."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery, RetryLater
from pena.contracts import GraduationDecided
from services.participants import queries
from services.participants.service import set_status


async def on_graduation_decided(session: AsyncSession, delivery: Delivery) -> None:
    decision: GraduationDecided = delivery.payload
    participant = await queries.participant_by_id(session, decision.participant_id, for_update=True)
    if participant is None:
        raise RetryLater("graduation decided for a participant this registry does not hold (yet)")
    if participant.status == "erased":
        return
    last = participant.graduation_decided_at
    if last is not None and decision.decided_at < last:
        return  # a newer decision was already applied
    if decision.graduated:
        target, reason_code = "graduated", "graduation_decided"
    elif decision.outcome == "reversed":
        target, reason_code = "active", "graduation_reversed"
    else:
        return  # rejected or deferred: the status stays as it is
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
        settings=delivery.settings,
        now=delivery.clock.now(),
    )


HANDLERS = {"graduation.decided": on_graduation_decided}
