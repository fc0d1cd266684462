"""Reads of personal data, each audited: one participant, lookup by NIK, the list (and export) and a
participant's history. Records outside the caller's reach answer 404 exactly like missing ones."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.crypto import nik_token
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, not_found
from pena.settings import Settings
from services.participants import queries
from services.participants.models import Participant, ParticipantChange
from services.participants.queries import ParticipantFilter
from services.participants.schemas import ParticipantSummaryRead
from services.participants.views import view

__all__ = [
    "ParticipantFilter",
    "get_participant",
    "history",
    "list_participants",
    "load_visible",
    "lookup",
    "participants_page",
]

ALL_UNITS = ""  # the visible-prefix value for callers who see every region


def visible_prefix(principal: Principal) -> str | None:
    """ "" = every region (admin, integrator); a digit prefix = the caller's unit; None = nothing."""
    if principal.is_admin or principal.has_role("integrator"):
        return ALL_UNITS
    unit = (principal.unit or "").strip()
    return unit if unit.isdigit() and len(unit) <= 10 else None


def can_see(principal: Principal, participant: Participant) -> bool:
    prefix = visible_prefix(principal)
    return prefix is not None and participant.region_code.startswith(prefix)


async def load_visible(
    session: AsyncSession, *, principal: Principal, participant_id: str, for_update: bool = False
) -> Participant:
    """Out-of-unit records answer 404 exactly like missing ones: existence does not leak."""
    participant = await queries.participant_by_id(session, participant_id, for_update=for_update)
    if participant is None or not can_see(principal, participant):
        raise not_found("participant", participant_id)
    return participant


async def get_participant(
    session: AsyncSession, *, principal: Principal, participant_id: str, purpose: str | None = None
) -> Participant:
    participant = await load_visible(session, principal=principal, participant_id=participant_id)
    await record_audit(
        session,
        actor=principal,
        action="participant.read",
        subject_type="participant",
        subject_id=participant.id,
        purpose=purpose,
        details={"full_nik": principal.has("participants:read_nik")},
    )
    return participant


async def lookup(
    session: AsyncSession, *, principal: Principal, settings: Settings, nik: str, purpose: str | None = None
) -> Participant:
    participant = await queries.participant_by_nik_token(session, nik_token(nik, settings.nik_hmac_key))
    found = participant is not None and can_see(principal, participant)
    await record_audit(
        session,
        actor=principal,
        action="participant.lookup",
        subject_type="participant",
        subject_id=participant.id if participant is not None and found else None,
        outcome="ok" if found else "not_found",
        purpose=purpose,
    )
    if participant is None or not found:
        raise Problem(404, "Not found", "no participant with this NIK (or it is outside your unit)", type_="not-found")
    return participant


async def list_participants(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: ParticipantFilter,
    after: tuple[datetime, str] | None,
    limit: int,
    action: str = "participant.list",
) -> list[Participant]:
    prefix = visible_prefix(principal)
    if filters.flagged is not None and not principal.is_admin:
        raise Problem(403, "Forbidden", "the duplicate review list is for admins", type_="forbidden")
    if prefix is None:
        rows: list[Participant] = []
    else:
        scoped = ParticipantFilter(**{**filters.__dict__, "unit_prefix": prefix})
        rows = await queries.list_participants(session, filters=scoped, after=after, limit=limit)
    await record_audit(
        session,
        actor=principal,
        action=action,
        subject_type="participant",
        subject_id=None,
        details={"returned": min(len(rows), limit), "filters": {k: v for k, v in filters.__dict__.items() if v}},
    )
    return rows


async def participants_page(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    filters: ParticipantFilter,
    page: PageRequest,
) -> Page[ParticipantSummaryRead]:
    after = read_cursor(page, ("created_at", datetime), ("id", str))
    rows = await list_participants(session, principal=principal, filters=filters, after=after, limit=page.limit)
    return keyset_page(
        rows,
        page,
        key=lambda p: {"created_at": p.created_at.isoformat(), "id": p.id},
        item=lambda p: ParticipantSummaryRead.model_validate(view(p, principal=principal, settings=settings)),
    )


async def history(session: AsyncSession, *, principal: Principal, participant_id: str) -> list[ParticipantChange]:
    participant = await load_visible(session, principal=principal, participant_id=participant_id)
    await record_audit(
        session, actor=principal, action="participant.history", subject_type="participant", subject_id=participant.id
    )
    return await queries.changes_of(session, participant.id)
