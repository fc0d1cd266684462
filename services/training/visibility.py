"""Who sees which centre and batch: another centre's records answer 404 like missing ones (no leak)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.problems import Problem, not_found
from services.training import queries
from services.training.models import Batch, TrainingCentre


def centre_scope(principal: Principal) -> str | None:
    """The one centre a caller is limited to, or None for callers who see every centre
    (admin, and read-only integrators). A centre operator without a unit sees nothing."""
    if principal.is_admin or not principal.has_role("centre_operator"):
        return None
    if not principal.unit:
        raise Problem(403, "Forbidden", "a centre operator token must carry the centre id as unit", type_="forbidden")
    return principal.unit


def _visible(principal: Principal, centre_id: str) -> bool:
    scope = centre_scope(principal)
    return scope is None or scope == centre_id


async def load_centre(session: AsyncSession, *, principal: Principal, centre_id: str) -> TrainingCentre:
    """The centre if the caller may see it; another centre is reported as missing (no leak)."""
    centre = await queries.centre_by_id(session, centre_id)
    if centre is None or not _visible(principal, centre.id):
        raise not_found("training centre", centre_id)
    return centre


async def load_batch(session: AsyncSession, *, principal: Principal, batch_id: str, for_update: bool = False) -> Batch:
    """The batch if the caller may see it; another centre's batch is reported as missing (no leak)."""
    batch = await queries.batch_by_id(session, batch_id, for_update=for_update)
    if batch is None or not _visible(principal, batch.centre_id):
        raise not_found("batch", batch_id)
    return batch
