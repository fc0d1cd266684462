"""A batch's roster: every enrolment with attendance figures and outcome (personal data: audited)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.http.tabular import Column
from services.training import queries
from services.training.outcomes import attendance_rate
from services.training.schemas import RosterEntry, RosterRead
from services.training.visibility import load_batch


async def roster(
    session: AsyncSession, *, principal: Principal, batch_id: str, export: str | None = None
) -> RosterRead:
    batch = await load_batch(session, reach=reach_of(principal), batch_id=batch_id)
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
                attendance_rate=attendance_rate(count, total),
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
        details={"participants": len(items), "format": export},
    )
    return RosterRead(
        batch_id=batch.id,
        status=batch.status,
        sessions_total=total,
        min_attendance_rate=batch.min_attendance_rate,
        items=items,
    )


# a roster lists persons for staff whose reach covers the batch: no count cells, nothing suppressed
# (suppression is for aggregates; who may see these rows is the route's policy)
EXPORT_COLUMNS = tuple(Column(name) for name in RosterEntry.model_fields)
