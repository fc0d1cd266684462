"""Backfill import of batch completions (kind `training.completions`): one row closes one running
batch as POST /v1/batches/{id}/close does, with its (past) `completed_at`: each enrolled participant's
outcome by the batch's attendance rule (`decide_outcomes`, the close's own function), announced as
training.completed or training.dropped, so Monev plans the visits of a 2023 cohort from its 2023
completion date. A chunk loads its batches (locked), their sessions, enrolments and attendance counts
once, and writes set-based: one UPDATE of enrolments, one of batches, one outbox and one audit INSERT.
A batch already completed is a duplicate (closing again changes and announces nothing)."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audits
from pena.import_runs import ChunkResult, ImportContext, Rows
from pena.outbox import emit_rows
from services.training import queries
from services.training.backfill_rows import cell, index_batches, moment, refuse, sessions_by_batch
from services.training.completion import close_errors, closed_audit_details, decide_outcomes
from services.training.models import Batch, Enrolment


async def process_completions(session: AsyncSession, ctx: ImportContext, rows: Rows) -> ChunkResult:
    result = ChunkResult()
    now = ctx.clock.now()
    index = await index_batches(session, ctx, rows, for_update=True)
    batch_ids = {b.id for b in index.batches.values()}
    sessions = await sessions_by_batch(session, batch_ids)
    enrolled: dict[str, list[Enrolment]] = {}
    for e in await queries.enrolments_of_batches(session, batch_ids, status="enrolled"):
        enrolled.setdefault(e.batch_id, []).append(e)
    attended = await queries.attended_counts_of_batches(session, batch_ids)
    closed: list[Batch] = []
    outcomes: list[Enrolment] = []
    events: list[dict[str, Any]] = []
    audits: list[dict[str, Any]] = []
    for number, row in rows:
        batch = index.batch(row)
        if isinstance(batch, list):
            refuse(result, number, batch)
            continue
        if batch.status == "completed":
            result.duplicates += 1  # closed before (a re-uploaded file, or twice in this one)
            continue
        given = cell(row, "completed_at")
        try:
            when = moment(given, ctx.settings.business_timezone) if given else now  # empty: now, as the API
        except ValueError:
            refuse(result, number, [("completed_at", "datetime_from_date_parsing")])
            continue
        errors: list[tuple[str, str]] = [] if batch.status == "running" else [("batch_ref", "invalid_transition")]
        found = sessions.get(batch.id, [])
        if not found:
            errors.append(("batch_ref", "no_sessions"))
        if found:
            errors.extend((f, r) for f, r, _ in close_errors(now=now, when=when, last_session=found[-1].session_date))
        if errors:
            refuse(result, number, errors)
            continue
        people = enrolled.get(batch.id, [])
        completed, dropped, announced = decide_outcomes(
            batch, people, attended.get(batch.id, {}), total=len(found), when=when, now=now
        )
        batch.status, batch.completed_at, batch.updated_at = "completed", when, now
        closed.append(batch)
        outcomes.extend(people)
        events.extend(announced)
        audits.append(
            audit_row(
                actor=ctx.actor,
                action="training.batch.closed",
                subject_type="batch",
                subject_id=batch.id,
                details=closed_audit_details(completed, dropped, when, backdated=True) | {"import_id": ctx.import_id},
            )
        )
        result.created += 1
    await queries.update_enrolment_outcomes(session, outcomes)
    await queries.close_batches(session, closed)
    await emit_rows(session, events)
    await record_audits(session, audits)
    return result
