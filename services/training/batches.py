"""Batches (angkatan): scheduling with their sessions, the lifecycle, one batch's view and the list."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.contracts import BatchScheduled
from pena.ids import new_id
from pena.outbox import emit
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, field_error
from pena.reference.taxonomy import business_field_errors
from services.training import queries
from services.training.models import Batch, BatchSession, TrainingCentre
from services.training.outcomes import drop_all_enrolled
from services.training.reference import BUSINESS_FIELDS, METHODS, MODULES, TRANSITIONS
from services.training.schemas import BatchCreate, BatchRead, BatchSummaryRead, SessionRead
from services.training.visibility import load_batch, load_centre, reachable_centres

RuleError = tuple[str, str, str]  # (field, rule, message)


def session_errors(*, start: date, end: date, modules: list[str], day: date, module: str) -> list[RuleError]:
    """The rules one session of a batch meets (POST /v1/batches and the sessions import)."""
    errors: list[RuleError] = []
    if not start <= day <= end:
        errors.append(("date", "within_batch_dates", "session date must be within start..end"))
    if module not in modules:
        errors.append(("module", "one_of_batch_modules", "session module must be a batch module"))
    return errors


def batch_errors(data: BatchCreate) -> list[RuleError]:
    """Every rule a batch (with its sessions) fails, beyond its schema, in the order the API reports them."""
    if errors := business_field_errors(data.business_field):  # the kernel taxonomy's one rule
        return [(errors[0]["field"], errors[0]["rule"], errors[0]["message"])]
    for i, module in enumerate(data.modules):
        if module not in MODULES:
            return [(f"modules.{i}", "one_of", f"module must be one of {', '.join(MODULES)}")]
    if data.end_date < data.start_date:
        return [("end_date", "on_or_after_start_date", "end_date must not be before start_date")]
    seen: set[tuple[date, str]] = set()
    for i, s in enumerate(data.sessions):
        found = session_errors(
            start=data.start_date, end=data.end_date, modules=data.modules, day=s.date, module=s.module
        )
        if found:
            field, rule, message = found[0]
            return [(f"sessions.{i}.{field}", rule, message)]
        if (s.date, s.module) in seen:
            return [(f"sessions.{i}", "unique", "the same module twice on one date")]
        seen.add((s.date, s.module))
    return []


def _validate_batch(data: BatchCreate) -> None:
    if errors := batch_errors(data):
        raise field_error(*errors[0])


def scheduled_event(batch: Batch, centre: TrainingCentre) -> BatchScheduled:
    """training.batch_scheduled of a new batch (the API's and the import's)."""
    return BatchScheduled(
        batch_id=batch.id,
        centre_id=batch.centre_id,
        business_field=batch.business_field,
        method=batch.method,
        start_date=batch.start_date,
        end_date=batch.end_date,
        region_code=batch.region_code,
        capacity=batch.capacity,
        centre_name=centre.name,
        method_name=METHODS.get(batch.method),
        business_field_name=BUSINESS_FIELDS[batch.business_field][0],
    )


def new_batch(data: BatchCreate, *, centre_id: str, status: str, now: datetime, batch_ref: str | None = None) -> Batch:
    """A batch as the route and the backfill import store it (modules and trainers without repeats)."""
    return Batch(
        id=new_id(),
        centre_id=centre_id,
        batch_ref=batch_ref,
        name=data.name,
        business_field=data.business_field,
        method=data.method,
        modules=list(dict.fromkeys(data.modules)),
        start_date=data.start_date,
        end_date=data.end_date,
        region_code=data.region_code,
        capacity=data.capacity,
        trainers=list(dict.fromkeys(data.trainers)),
        min_attendance_rate=data.min_attendance_rate,
        status=status,
        created_at=now,
        updated_at=now,
    )


async def create_batch(session: AsyncSession, *, principal: Principal, clock: Clock, data: BatchCreate) -> Batch:
    centre = await load_centre(session, reach=reach_of(principal), centre_id=data.centre_id)
    _validate_batch(data)
    now = clock.now()
    batch = new_batch(data, centre_id=centre.id, status="planned", now=now)
    session.add(batch)
    await session.flush()
    for s in data.sessions:
        session.add(BatchSession(id=new_id(), batch_id=batch.id, session_date=s.date, module=s.module))
    await session.flush()
    await emit(session, "training.batch_scheduled", scheduled_event(batch, centre), subject=batch.id, time=now)
    await record_audit(
        session,
        actor=principal,
        action="training.batch.created",
        subject_type="batch",
        subject_id=batch.id,
        details={"centre_id": centre.id, "sessions": len(data.sessions), "backdated": data.start_date < now.date()},
    )
    return batch


async def get_batch(session: AsyncSession, *, principal: Principal, batch_id: str) -> BatchRead:
    return await batch_view(session, await load_batch(session, reach=reach_of(principal), batch_id=batch_id))


async def batch_view(session: AsyncSession, batch: Batch) -> BatchRead:
    sessions = await queries.sessions_of(session, batch.id)
    return BatchRead(
        **batch.model_dump(exclude={"sessions"}),
        enrolled=await queries.enrolled_count(session, batch.id),
        sessions=[
            SessionRead(id=s.id, date=s.session_date, module=s.module, attendance_recorded_at=s.attendance_recorded_at)
            for s in sessions
        ],
    )


async def change_status(
    session: AsyncSession, *, principal: Principal, clock: Clock, batch_id: str, to: str, reason_code: str | None
) -> Batch:
    batch = await load_batch(session, reach=reach_of(principal), batch_id=batch_id, for_update=True)
    if to == "completed" and batch.status == "running":
        raise Problem(
            409,
            "Conflict",
            "a batch is completed by closing it: POST /v1/batches/{id}/close computes the outcomes",
            type_="use_close",
        )
    if to not in TRANSITIONS[batch.status]:
        raise Problem(
            409,
            "Conflict",
            f"a batch cannot move from {batch.status} to {to}",
            type_="invalid_transition",
            from_status=batch.status,
            to_status=to,
            allowed=sorted(TRANSITIONS[batch.status] - {"completed"}),
        )
    now = clock.now()
    previous = batch.status
    if to == "cancelled":
        await drop_all_enrolled(session, batch=batch, reason="batch_cancelled", when=now)
    batch.status = to
    batch.updated_at = now
    session.add(batch)
    await record_audit(
        session,
        actor=principal,
        action="training.batch.status_changed",
        subject_type="batch",
        subject_id=batch.id,
        details={"from": previous, "to": to, "reason_code": reason_code},
    )
    return batch


async def list_batches(
    session: AsyncSession,
    *,
    principal: Principal,
    centre_id: str | None,
    status: str | None,
    business_field: str | None,
    region_prefix: str | None,
    start_from: date | None,
    start_to: date | None,
    page: PageRequest,
) -> Page[BatchSummaryRead]:
    """Batches by start date; only those of centres the caller reaches (an operator: their own centre's).
    `region_prefix` filters on the batch's location; the reach on its centre."""
    after = read_cursor(page, ("start", date), ("id", str))
    reachable = reachable_centres(reach_of(principal))
    if reachable is None or (reachable.centre_id and centre_id not in (None, reachable.centre_id)):
        return Page(items=[], next_cursor=None, limit=page.limit)  # nothing in reach
    rows = await queries.list_batches(
        session,
        centre_id=centre_id or reachable.centre_id,
        centre_region_prefix=reachable.region_prefix,
        status=status,
        business_field=business_field,
        region_prefix=region_prefix,
        start_from=start_from,
        start_to=start_to,
        after=after,
        limit=page.limit,
    )
    return keyset_page(
        rows,
        page,
        key=lambda b: {"start": b.start_date, "id": b.id},
        item=lambda b: BatchSummaryRead.model_validate(b, from_attributes=True),
    )
