"""Training centres (BBPPKS / Balai / Sentra): creation by an admin, reads and the list."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.ids import new_id
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem
from services.training import queries
from services.training.models import TrainingCentre
from services.training.schemas import CentreCreate, CentreRead
from services.training.visibility import load_centre, reachable_centres


async def create_centre(
    session: AsyncSession, *, principal: Principal, clock: Clock, data: CentreCreate
) -> TrainingCentre:
    principal.require("training:admin")
    existing = await queries.centre_by_code(session, data.code)
    if existing is not None:
        raise Problem(
            409,
            "Conflict",
            f"a centre with code {data.code} exists",
            type_="centre_code_taken",
            existing_id=existing.id,
        )
    centre = TrainingCentre(
        id=new_id(),
        name=data.name,
        code=data.code,
        region_code=data.region_code,
        operators=sorted(set(data.operators)),
        created_at=clock.now(),
    )
    try:
        async with session.begin_nested():
            session.add(centre)
            await session.flush()
    except IntegrityError as exc:  # a concurrent create with the same code won
        raise Problem(409, "Conflict", f"a centre with code {data.code} exists", type_="centre_code_taken") from exc
    await record_audit(
        session, actor=principal, action="training.centre.created", subject_type="training_centre", subject_id=centre.id
    )
    return centre


async def get_centre(session: AsyncSession, *, principal: Principal, centre_id: str) -> TrainingCentre:
    return await load_centre(session, reach=reach_of(principal), centre_id=centre_id)


async def list_centres(
    session: AsyncSession, *, principal: Principal, region_prefix: str | None, page: PageRequest
) -> Page[CentreRead]:
    """Centres by code; only those the caller reaches (an operator: their own)."""
    after = read_cursor(page, ("code", str))
    reachable = reachable_centres(reach_of(principal))
    if reachable is None:
        return Page(items=[], next_cursor=None, limit=page.limit)
    rows = await queries.list_centres(
        session,
        only_id=reachable.centre_id,
        region_prefixes=[p for p in (reachable.region_prefix, region_prefix) if p],
        after_code=after[0] if after else None,
        limit=page.limit,
    )
    return keyset_page(rows, page, key=lambda c: {"code": c.code}, item=centre_read)


def centre_read(centre: TrainingCentre) -> CentreRead:
    return CentreRead.model_validate(centre, from_attributes=True)
