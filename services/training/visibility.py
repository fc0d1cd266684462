"""Which centres and batches a caller reaches, by the kernel's access policy (`pena.access`):

- national reach (admin; an integrator without a unit): every centre and batch;
- centre reach (a centre operator, `unit` = the centre id): that centre and its batches;
- region reach (an integrator narrowed by a region unit): centres whose region code lies in the
  region, and their batches;
- anything else reaches nothing (the route's `policy` has already answered 403).

A record out of reach answers 404 exactly like a missing one (its existence is not leaked), and a list
holds only records in reach."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, covers_centre, covers_region
from pena.problems import not_found
from services.training import queries
from services.training.models import Batch, TrainingCentre


@dataclass(frozen=True)
class CentreFilter:
    """The centres a list may hold: `centre_id` only that one, `region_prefix` only centres whose
    region code starts with it; both None: every centre."""

    centre_id: str | None = None
    region_prefix: str | None = None


def reachable_centres(reach: Reach) -> CentreFilter | None:
    """The list filter of a reach, or None when it reaches no centre (the list is empty)."""
    if reach.is_national:
        return CentreFilter()
    if reach.kind == "centre" and reach.centre:
        return CentreFilter(centre_id=reach.centre)
    if reach.kind == "region" and reach.region:
        return CentreFilter(region_prefix=reach.region)
    return None


def centre_in_reach(reach: Reach, centre: TrainingCentre) -> bool:
    return covers_centre(reach, centre.id) or covers_region(reach, centre.region_code)


async def load_centre(session: AsyncSession, *, reach: Reach, centre_id: str) -> TrainingCentre:
    """The centre if the caller reaches it; otherwise 404 as for a missing one."""
    centre = await queries.centre_by_id(session, centre_id)
    if centre is None or not centre_in_reach(reach, centre):
        raise not_found("training centre", centre_id)
    return centre


async def load_batch(session: AsyncSession, *, reach: Reach, batch_id: str, for_update: bool = False) -> Batch:
    """The batch if the caller reaches its centre; otherwise 404 as for a missing one."""
    batch = await queries.batch_by_id(session, batch_id, for_update=for_update)
    if batch is None:
        raise not_found("batch", batch_id)
    if reach.is_national or covers_centre(reach, batch.centre_id):
        return batch
    centre = await queries.centre_by_id(session, batch.centre_id) if reach.kind == "region" else None
    if centre is None or not centre_in_reach(reach, centre):
        raise not_found("batch", batch_id)
    return batch
