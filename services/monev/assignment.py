"""Who does the follow-up: facilitators' region coverage (automatic assignment of new tasks) and the
manual assignment of a task."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.ids import new_id
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import not_found
from services.monev import queries
from services.monev.models import FacilitatorRegion, MonevTask
from services.monev.schemas import AssignmentCommand, FacilitatorRegionCreate, FacilitatorRegionRead
from services.monev.tasks import load_task


async def add_facilitator_region(
    session: AsyncSession, *, principal: Principal, clock: Clock, data: FacilitatorRegionCreate
) -> FacilitatorRegion:
    principal.require("monev:assign")
    row, created = await queries.add_facilitator_region(
        session,
        FacilitatorRegion(
            id=new_id(),
            subject=data.subject,
            region_prefix=data.region_prefix,
            created_by=principal.subject,
            created_at=clock.now(),
        ),
    )
    if created:  # the same coverage twice is the same fact
        await record_audit(
            session,
            actor=principal,
            action="monev.facilitator_region.added",
            subject_type="facilitator",
            subject_id=data.subject,
            details={"region_prefix": data.region_prefix},
        )
    return row


async def remove_facilitator_region(session: AsyncSession, *, principal: Principal, coverage_id: str) -> None:
    """Stops automatic assignment there; tasks already assigned stay with the facilitator."""
    principal.require("monev:assign")
    row = await queries.facilitator_region_by_id(session, coverage_id)
    if row is None:
        raise not_found("facilitator region", coverage_id)
    await queries.delete_facilitator_region(session, row)
    await record_audit(
        session,
        actor=principal,
        action="monev.facilitator_region.removed",
        subject_type="facilitator",
        subject_id=row.subject,
        details={"region_prefix": row.region_prefix},
    )


def facilitator_region_read(row: FacilitatorRegion) -> FacilitatorRegionRead:
    return FacilitatorRegionRead.model_validate(row, from_attributes=True)


async def list_facilitator_regions(
    session: AsyncSession, *, subject: str | None, page: PageRequest
) -> Page[FacilitatorRegionRead]:
    after = read_cursor(page, ("prefix", str), ("id", str))
    rows = await queries.list_facilitator_regions(session, subject=subject, after=after, limit=page.limit)
    return keyset_page(rows, page, key=lambda r: {"prefix": r.region_prefix, "id": r.id}, item=facilitator_region_read)


async def assign_task(
    session: AsyncSession, *, principal: Principal, clock: Clock, task_id: str, data: AssignmentCommand
) -> MonevTask:
    principal.require("monev:assign")
    task = await load_task(session, principal=principal, task_id=task_id, for_update=True)
    previous = task.assignee
    task.assignee = data.facilitator
    task.assigned_by = principal.subject
    if data.region:
        task.region_code = data.region
    task.updated_at = clock.now()
    session.add(task)
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action="monev.task.assigned",
        subject_type="monev_task",
        subject_id=task.id,
        details={"from": previous, "to": data.facilitator, "region_changed": bool(data.region)},
    )
    return task
