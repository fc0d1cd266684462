"""An enrolment's outcome (withdrawn, dropped, completed) with its attendance figures, and the
training.dropped announcement; shared by withdrawal, cancellation and closing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.contracts import TrainingDropped
from pena.outbox import emit_rows, outbox_row
from services.training import queries
from services.training.models import Batch, Enrolment


def attendance_rate(attended: int, total: int) -> float:
    return round(attended / total, 4) if total else 0.0


def set_outcome(
    enrolment: Enrolment, *, status: str, reason: str | None, when: datetime, attended: int, total: int
) -> None:
    enrolment.status = status
    enrolment.outcome_reason = reason
    enrolment.outcome_at = when
    enrolment.sessions_attended = attended
    enrolment.attendance_rate = attendance_rate(attended, total)


def dropped_row(batch: Batch, enrolment: Enrolment, *, reason: str, when: datetime) -> dict[str, Any]:
    """The outbox row of training.dropped for an enrolment whose outcome is set."""
    _, row = outbox_row(
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
    return row


async def emit_dropped(
    session: AsyncSession, *, batch: Batch, enrolment: Enrolment, reason: str, when: datetime
) -> None:
    await emit_rows(session, [dropped_row(batch, enrolment, reason=reason, when=when)])


async def drop_all_enrolled(session: AsyncSession, *, batch: Batch, reason: str, when: datetime) -> None:
    total = len(await queries.sessions_of(session, batch.id))
    attended = await queries.attended_counts(session, batch.id)
    for enrolment in await queries.enrolments_of(session, batch.id, status="enrolled"):
        count = attended.get(enrolment.participant_id, 0)
        set_outcome(enrolment, status="dropped", reason=reason, when=when, attended=count, total=total)
        session.add(enrolment)
        await emit_dropped(session, batch=batch, enrolment=enrolment, reason=reason, when=when)
