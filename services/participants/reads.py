"""Reads of personal data, each audited: one participant, lookup by NIK, the list (and export) and a
participant's history. Records outside the caller's reach answer 404 exactly like missing ones."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import covers_region, list_region_prefix, reach_of
from pena.audit import audit_row, record_audit, record_audits
from pena.auth import Principal
from pena.crypto import nik_token
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, not_found
from pena.ratelimit import RateLimiter
from pena.settings import Settings
from services.participants import queries
from services.participants.models import Participant, ParticipantChange
from services.participants.queries import ParticipantFilter
from services.participants.schemas import ParticipantSummaryRead
from services.participants.settings import get_participants_settings
from services.participants.views import view

__all__ = [
    "lookup_limiter",
    "ParticipantFilter",
    "get_participant",
    "history",
    "list_participants",
    "load_visible",
    "lookup",
    "participants_page",
]


def lookup_limiter(state: Any, settings: Settings) -> RateLimiter:
    """The per-subject limiter of lookups by NIK (one per app, kept on its state): a lookup confirms or
    refutes a guessed NIK, so it gets its own, smaller limit (PENA_NIK_LOOKUPS_PER_MINUTE)."""
    limiter = getattr(state, "nik_lookup_limiter", None)
    if limiter is None:
        limiter = state.nik_lookup_limiter = RateLimiter(
            get_participants_settings().nik_lookups_per_minute,
            max_subjects=settings.rate_limit_max_subjects,
            name="NIK lookups",
        )
    return limiter


def visible(principal: Principal, participant: Participant) -> bool:
    """May this caller see this record? The kernel's reach (pena.access) by the record's region."""
    return covers_region(reach_of(principal), participant.region_code)


async def load_visible(
    session: AsyncSession, *, principal: Principal, participant_id: str, for_update: bool = False
) -> Participant:
    """Out-of-unit records answer 404 exactly like missing ones: existence does not leak."""
    participant = await queries.participant_by_id(session, participant_id, for_update=for_update)
    if participant is None or not visible(principal, participant):
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
) -> Participant | None:
    """Finds a participant by NIK within the caller's reach (None: not found, or out of reach). Every
    lookup is audited, found or not (the subject id only when found in reach): a miss returns None
    rather than raising, so the request commits its audit row; the route answers 404. The route
    rate-limits lookups per subject first."""
    participant = await queries.participant_by_nik_token(session, nik_token(nik, settings.nik_hmac_key))
    found = participant is not None and visible(principal, participant)
    await record_audit(
        session,
        actor=principal,
        action="participant.lookup",
        subject_type="participant",
        subject_id=participant.id if participant is not None and found else None,
        outcome="ok" if found else "not_found",
        purpose=purpose,
    )
    return participant if found else None


async def list_participants(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: ParticipantFilter,
    after: tuple[datetime, str] | None,
    limit: int,
    action: str = "participant.list",
) -> list[Participant]:
    if filters.flagged is not None and not principal.is_admin:
        raise Problem(403, "Forbidden", "the duplicate review list is for admins", type_="forbidden")
    # the kernel's reach decides the region prefix: "" every region, None nothing (fail closed)
    prefix = list_region_prefix(reach_of(principal), filters.region_prefix)
    if prefix is None:
        rows: list[Participant] = []
    else:
        scoped = ParticipantFilter(**{**filters.__dict__, "region_prefix": None, "unit_prefix": prefix})
        rows = await queries.list_participants(session, filters=scoped, after=after, limit=limit)
    await record_audits(session, list_audits(principal, action=action, rows=rows[:limit], filters=filters))
    return rows


def list_audits(
    principal: Principal, *, action: str, rows: list[Participant], filters: ParticipantFilter
) -> list[dict[str, Any]]:
    """One audit row per participant a list or export returned (written in one statement), each with
    the filters and count; an empty answer is recorded once without a subject."""
    details = {"returned": len(rows), "filters": {k: v for k, v in filters.__dict__.items() if v}}
    subjects: list[str | None] = [p.id for p in rows] or [None]
    return [
        audit_row(actor=principal, action=action, subject_type="participant", subject_id=subject, details=details)
        for subject in subjects
    ]


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
