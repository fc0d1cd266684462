"""Right to erasure (UU PDP)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.clock import Clock
from pena.outbox import forget_published
from pena.settings import Settings
from services.participants import households
from services.participants.changes import not_erased
from services.participants.history import record_change
from services.participants.models import Participant
from services.participants.reads import load_visible
from services.participants.status import set_status


async def erase(
    session: AsyncSession, *, principal: Principal, settings: Settings, clock: Clock, participant_id: str, reason: str
) -> Participant:
    """Right to erasure (UU PDP): blanks the personal fields and their tokens, keeps the non-personal
    facts (region, sex, birth year, field, programmes, decile, household size, household id) for
    statistics. The household's KK token goes too once no member of the family keeps personal data.
    participant.status_changed (to erased, without the KK token) tells monev and graduation to erase
    their figures of this participant."""
    participant = await load_visible(session, principal=principal, participant_id=participant_id, for_update=True)
    not_erased(participant)
    blanked = [
        name
        for name, value in (
            ("nik", participant.nik_enc),
            ("kk_number", participant.kk_enc),
            ("full_name", participant.name_enc),
            ("birth_date", participant.birth_date_enc),
            ("baseline_monthly_income", participant.baseline_income_enc),
            ("profile", participant.profile_enc),
        )
        if value is not None
    ]
    participant.profile_enc = None
    participant.nik_enc = participant.kk_enc = participant.name_enc = None
    participant.birth_date_enc = participant.baseline_income_enc = None
    participant.nik_token = participant.kk_token = participant.identity_hash = None
    participant.possible_duplicate_of = None
    participant.flagged = False
    now = clock.now()
    participant.erased_at = now
    participant.nik_region = None
    await set_status(
        session,
        participant,
        to_status="erased",
        reason_code="erasure_requested",
        reason=reason,
        actor=principal,
        settings=settings,
        now=now,
    )
    await households.after_erasure(session, participant.household_id, now)
    await forget_published(session, participant.id)  # published events with the income and KK token
    await record_change(
        session, participant, action="erased", actor=principal.subject, at=now, changed_fields=blanked, reason=reason
    )
    return participant
