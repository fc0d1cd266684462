"""Backfill imports of batches and their sessions (kinds `training.batches` and `training.sessions`):
each chunk validated row by row with the rules of POST /v1/batches (the same request model and
`batch_errors` / `session_errors`), then written set-based: one INSERT per table (batches or sessions,
outbox, audit). A batch is known by its centre's code and the file's `batch_ref`, unique in the centre:
a row whose batch (or session: batch, date, module) is already there is a duplicate, so re-uploading a
file adds nothing and announces nothing twice."""

from __future__ import annotations

from datetime import date
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audits
from pena.ids import new_id
from pena.import_runs import ChunkResult, ImportContext, Rows
from pena.outbox import emit_rows, outbox_row
from services.training import queries
from services.training.backfill_rows import (
    BATCH_REF,
    Refusal,
    cell,
    index_batches,
    listed,
    refuse,
    schema_errors,
)
from services.training.batches import batch_errors, new_batch, scheduled_event, session_errors
from services.training.models import Batch, TrainingCentre
from services.training.schemas import BatchCreate, PlannedSession

# a historical batch is usually imported as it stands: running (attendance and closing follow) or
# still planned or open; completed only through the completions import, which computes the outcomes
IMPORT_STATUSES = ("planned", "open", "running")
SESSION_STATUSES = frozenset({"planned", "open", "running"})
BATCH_COLUMNS = ("business_field", "method", "start_date", "end_date", "region_code", "capacity")
OPTIONAL_BATCH_COLUMNS = ("name", "modules", "trainers", "min_attendance_rate", "status")


def _batch_model(row: dict[Any, Any], centre: TrainingCentre) -> BatchCreate | Refusal:
    values: dict[str, Any] = {"centre_id": centre.id}
    for column in BATCH_COLUMNS + ("name", "min_attendance_rate"):
        if (value := cell(row, column)) is not None:
            values[column] = value
    for column in ("modules", "trainers"):
        if (items := listed(cell(row, column))) is not None:
            values[column] = items
    try:
        data = BatchCreate.model_validate(values)
    except ValidationError as exc:
        return schema_errors(exc, {"centre_id": "centre_code"})
    return [(name, rule) for name, rule, _ in batch_errors(data)] or data


async def process_batches(session: AsyncSession, ctx: ImportContext, rows: Rows) -> ChunkResult:
    result = ChunkResult()
    index = await index_batches(session, ctx, rows, for_update=False)
    now = ctx.clock.now()
    new: list[tuple[Batch, TrainingCentre]] = []
    for number, row in rows:
        centre = index.centre(row)
        if isinstance(centre, list):
            refuse(result, number, centre)
            continue
        errors: Refusal = []
        ref = cell(row, "batch_ref")
        if ref is None:
            errors.append(("batch_ref", "required"))
        elif not BATCH_REF.match(ref):
            errors.append(("batch_ref", "pattern"))
        status = cell(row, "status") or "planned"
        if status not in IMPORT_STATUSES:
            errors.append(("status", "one_of"))
        data = _batch_model(row, centre)
        if isinstance(data, list):
            errors.extend(data)
        if errors or isinstance(data, list):
            refuse(result, number, errors)
            continue
        batch = new_batch(data, centre_id=centre.id, status=status, now=now, batch_ref=ref)
        new.append((batch, centre))
    inserted = await queries.insert_batches(session, [b.model_dump() for b, _ in new])
    created = [(b, c) for b, c in new if b.id in inserted]
    result.created = len(created)
    result.duplicates = len(new) - len(created)  # (centre, batch_ref) already there, or twice in the file
    await emit_rows(
        session,
        [outbox_row("training.batch_scheduled", scheduled_event(b, c), subject=b.id, time=now)[1] for b, c in created],
    )
    await record_audits(
        session,
        [
            audit_row(
                actor=ctx.actor,
                action="training.batch.created",
                subject_type="batch",
                subject_id=b.id,
                details={
                    "centre_id": c.id,
                    "sessions": 0,
                    "backdated": b.start_date < now.date(),
                    "status": b.status,
                    "import_id": ctx.import_id,
                },
            )
            for b, c in created
        ],
    )
    return result


def _planned_session(row: dict[Any, Any]) -> tuple[date, str] | Refusal:
    """The row's session date and module, by the request model of a planned session."""
    try:
        planned = PlannedSession.model_validate({"date": cell(row, "session_date"), "module": cell(row, "module")})
    except ValidationError as exc:
        return schema_errors(exc, {"date": "session_date"})
    return planned.date, planned.module


async def process_sessions(session: AsyncSession, ctx: ImportContext, rows: Rows) -> ChunkResult:
    result = ChunkResult()
    index = await index_batches(session, ctx, rows, for_update=True)
    batch_ids = {b.id for b in index.batches.values()}
    stored = {(s.batch_id, s.session_date, s.module) for s in await queries.sessions_of_batches(session, batch_ids)}
    new: list[dict[str, Any]] = []
    for number, row in rows:
        batch = index.batch(row)
        planned = _planned_session(row)
        if isinstance(batch, list) or isinstance(planned, list):
            refuse(
                result,
                number,
                (batch if isinstance(batch, list) else []) + (planned if isinstance(planned, list) else []),
            )
            continue
        day, module = planned
        if (batch.id, day, module) in stored:
            result.duplicates += 1  # the batch has it already (a re-uploaded file, or twice in this one)
            continue
        errors: Refusal = [] if batch.status in SESSION_STATUSES else [("batch_ref", "batch_not_closed")]
        found = session_errors(
            start=batch.start_date, end=batch.end_date, modules=batch.modules, day=day, module=module
        )
        errors.extend(("session_date" if f == "date" else f, r) for f, r, _ in found)
        if errors:
            refuse(result, number, errors)
            continue
        stored.add((batch.id, day, module))
        new.append({"id": new_id(), "batch_id": batch.id, "session_date": day, "module": module})
    inserted = await queries.insert_sessions(session, new)  # ON CONFLICT DO NOTHING: a concurrent import's
    result.created = len(inserted)
    result.duplicates += len(new) - len(inserted)
    added: dict[str, list[date]] = {}
    for s in new:
        if s["id"] in inserted:
            added.setdefault(s["batch_id"], []).append(s["session_date"])
    await record_audits(
        session,
        [
            audit_row(
                actor=ctx.actor,
                action="training.batch.sessions_added",
                subject_type="batch",
                subject_id=batch_id,
                details={"sessions": len(days), "first": min(days).isoformat(), "import_id": ctx.import_id},
            )
            for batch_id, days in sorted(added.items())
        ],
    )
    return result
