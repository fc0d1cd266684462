"""Erasure of a participant (UU PDP), announced by the registry's participant.status_changed to
`erased`: graduation keeps what statistics count in aggregate (outcomes, kinds, dates, region, centre,
business field, policy version, criterion names, thresholds and results, the reference figures used)
and drops the family's figures and free text:

- assessments: each criterion's `value` (income, income per member, ...) and `note`, and the
  verifier's notes;
- decisions: the reason (replaced by ERASED_TEXT: the column is required);
- appeals: the grounds (ERASED_TEXT) and the resolution reason;
- the participant read model: the KK token (the household id, a registry id, stays);
- relapse cases (mentoring visits below the poverty line, relapse.py): deleted with their figures.

Idempotent: a redelivered erasure changes nothing. A Monev result of the participant assessed after
the erasure (arriving late) is erased right after its assessment (handlers.on_monev_completed)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.outbox import forget_published
from services.graduation import queries

ERASED_TEXT = "[erased]"


async def erase_participant(session: AsyncSession, *, participant_id: str) -> dict[str, int]:
    # the same per-participant lock as an assessment: a Monev result being assessed now finishes first
    await queries.lock_key(session, f"graduation-participant:{participant_id}")
    counts = await queries.erase_participant(session, participant_id, erased_text=ERASED_TEXT)
    counts["relapse_cases"] = await queries.delete_relapse_cases(session, participant_id)
    # published graduation.assessed / decided events hold the criterion values and the KK token
    counts["published_events"] = await forget_published(session, participant_id)
    if any(counts.values()):
        await record_audit(
            session,
            actor=None,
            action="graduation.participant.erased",
            subject_type="participant",
            subject_id=participant_id,
            details=counts,
        )
    return counts


async def erased(session: AsyncSession, participant_id: str) -> bool:
    view = await queries.participant_view(session, participant_id)
    return view is not None and view.status == "erased"
