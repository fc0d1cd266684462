"""Households (KPM, Keluarga Penerima Manfaat): a family is one KK, known here by the keyed token of
its number. Every participant links to exactly one household; registration, a KK change and the bulk
import create or find it (`claim`), lock it, and enforce the policy: at most
`PENA_HOUSEHOLD_ACTIVE_LIMIT` (default 1) members of one KPM in the programme at once, counting the
statuses candidate and active. A further member is refused with 409 `household_limit` naming the
member in the programme (when the caller may see that record)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import covers_region, reach_of
from pena.audit import audit_subjects
from pena.auth import Principal
from pena.ids import new_id
from pena.problems import Problem, not_found
from services.participants import queries
from services.participants.schemas import HouseholdMemberRead, HouseholdRead
from services.participants.settings import get_participants_settings

ACTIVE_STATUSES = ("candidate", "active")
"""The statuses that count as "in the PENA programme" for the per-KPM limit."""

LIMIT_RULE = "household_limit"


def limit() -> int:
    return get_participants_settings().household_active_limit


def limit_message(allowed: int) -> str:
    return (
        f"this family (KK) already has {allowed} participant(s) in the programme (candidate or active);"
        f" the policy allows {allowed} per KPM"
    )


def limit_problem(existing_id: str | None, allowed: int) -> Problem:
    return Problem(
        409,
        "Household limit",
        limit_message(allowed),
        type_=LIMIT_RULE,
        existing_id=existing_id,
        limit=allowed,
    )


async def claim(session: AsyncSession, tokens: Sequence[str], now: datetime) -> dict[str, str]:
    """KK token -> household id for each token, the household created where missing and locked until
    the transaction ends (concurrent registrations of one family are serialised here)."""
    unique = sorted(set(tokens))
    return await queries.lock_households(session, unique, ids=[new_id() for _ in unique], now=now)


def _shown(actor: Principal | None, member: tuple[str, str, str | None]) -> str | None:
    """The id a 409 names: only of a record the caller may see (as the duplicate-NIK answer)."""
    participant_id, region, _ = member
    if actor is not None and not covers_region(reach_of(actor), region):
        return None
    return participant_id


async def check_room(
    session: AsyncSession,
    *,
    household_id: str,
    actor: Principal | None,
    excluding: str | None = None,
    nik_token: str | None = None,
) -> None:
    """Raises 409 household_limit when the (locked) household has no room for one more active member.
    `excluding` (the participant who moves in) and a member holding `nik_token` (the same person,
    registered meanwhile: the NIK's own 409 answers that) do not count."""
    allowed = limit()
    members = (await queries.active_members(session, [household_id], statuses=ACTIVE_STATUSES)).get(household_id, [])
    members = [m for m in members if m[0] != excluding and (nik_token is None or m[2] != nik_token)]
    if len(members) >= allowed:
        raise limit_problem(_shown(actor, members[0]), allowed)


async def active_tokens(session: AsyncSession, household_ids: Sequence[str]) -> dict[str, set[str | None]]:
    """household id -> the NIK tokens of its members in the programme now (the import's set-based
    check: a row of a person already in counts as that person's NIK duplicate, not a second member)."""
    members = await queries.active_members(session, household_ids, statuses=ACTIVE_STATUSES)
    return {household_id: {token for _, _, token in found} for household_id, found in members.items()}


async def after_erasure(session: AsyncSession, household_id: str | None, now: datetime) -> None:
    """The household's KK token goes once no member keeps personal data."""
    if household_id is not None:
        await session.flush()  # the erased status is what the query looks at
        await queries.forget_household_token(session, household_id, now)


# ------------------------------------------------------------------ read


async def read_household(session: AsyncSession, *, principal: Principal, household_id: str) -> HouseholdRead:
    """A household with the members the caller may see (each by the participant read's rule); one
    without any such member answers 404 like a missing one. Audited per member shown."""
    household = await queries.household_by_id(session, household_id)
    reach = reach_of(principal)
    members = [] if household is None else await queries.household_members(session, household_id)
    shown = [m for m in members if covers_region(reach, m.region_code)]
    if household is None or not shown:
        raise not_found("household", household_id)
    await audit_subjects(
        session,
        principal,
        "household.read",
        "participant",
        [m.id for m in shown],
        "household",
        details={"household_id": household.id},
    )
    return HouseholdRead(
        id=household.id,
        members=[HouseholdMemberRead(participant_id=m.id, status=m.status) for m in shown],  # type: ignore[arg-type]
        active_members=sum(m.status in ACTIVE_STATUSES for m in shown),
        active_limit=limit(),
        created_at=household.created_at,
    )
