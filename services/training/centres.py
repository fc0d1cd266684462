"""Training centres (BBPPKS / Balai / Sentra): creation by an admin, reads and the list."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.ids import new_id
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem
from services.training import queries
from services.training.models import TrainingCentre
from services.training.schemas import CentreCreate, CentreRead
from services.training.visibility import centre_scope, load_centre


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
    return await load_centre(session, principal=principal, centre_id=centre_id)


async def list_centres(
    session: AsyncSession, *, principal: Principal, region_prefix: str | None, page: PageRequest
) -> Page[CentreRead]:
    after = read_cursor(page, ("code", str))
    rows = await queries.list_centres(
        session,
        only_id=centre_scope(principal),
        region_prefix=region_prefix,
        after_code=after[0] if after else None,
        limit=page.limit,
    )
    return keyset_page(rows, page, key=lambda c: {"code": c.code}, item=centre_read)


def centre_read(centre: TrainingCentre) -> CentreRead:
    return CentreRead.model_validate(centre, from_attributes=True)
