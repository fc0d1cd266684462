"""What every training backfill import shares: reading a row's cells, naming a refused row's fields and
rules (never a value), and finding the batch a row refers to by its centre's code and the batch's
`batch_ref` (two statements per chunk, whatever its size), within the uploader's reach."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, reach_of
from pena.import_runs import ChunkResult, ImportContext, Rows
from pena.problems import Problem
from services.training import queries
from services.training.models import Batch, BatchSession, TrainingCentre
from services.training.visibility import centre_in_reach

Refusal = list[tuple[str, str]]  # (field, rule)
BATCH_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_./-]{0,59}$")
TRUE = frozenset({"true", "yes", "y", "1", "ya", "hadir"})
FALSE = frozenset({"false", "no", "n", "0", "tidak", "absen"})


def cell(row: dict[Any, Any], name: str) -> str | None:
    """A cell's text, stripped; None for an empty or missing cell."""
    value = row.get(name)
    return (value or "").strip() or None


def listed(value: str | None) -> list[str] | None:
    """A list cell: items separated by ';' (a spreadsheet cell holds one text)."""
    return None if value is None else [item.strip() for item in value.split(";") if item.strip()]


def flag(row: dict[Any, Any], name: str, *, default: bool) -> bool | None:
    """A yes/no cell (true/false, yes/no, 1/0, ya/tidak); None when it is neither."""
    value = cell(row, name)
    if value is None:
        return default
    lowered = value.lower()
    return True if lowered in TRUE else False if lowered in FALSE else None


def a_date(row: dict[Any, Any], name: str) -> date | None:
    """An ISO 8601 date cell (an XLSX date cell arrives as one); raises ValueError otherwise."""
    value = cell(row, name)
    return None if value is None else date.fromisoformat(value)


def moment(value: str, business_timezone: str) -> datetime:
    """An ISO 8601 time with its offset, a local time without one, or a bare date (its start), in the
    business time zone when no offset is given; raises ValueError otherwise."""
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=ZoneInfo(business_timezone))
    found = datetime.fromisoformat(value)
    return found if found.tzinfo is not None else found.replace(tzinfo=ZoneInfo(business_timezone))


def schema_errors(exc: ValidationError, renamed: dict[str, str] | None = None) -> Refusal:
    """A request model's refusals as (field, rule): the column's name and pydantic's error type."""
    found: Refusal = []
    for error in exc.errors():
        name = str(error["loc"][0]) if error["loc"] else "row"
        found.append(((renamed or {}).get(name, name), str(error["type"])))
    return found


def problem_errors(problem: Problem, column: str) -> Refusal:
    """A single-path Problem as (field, rule): its own field errors, else its type on `column`."""
    if problem.errors:
        return [(str(e["field"]), str(e["rule"])) for e in problem.errors]
    return [(column, problem.type)]


@dataclass
class BatchIndex:
    """The batches a chunk's rows name, and the centres they belong to (only those in reach)."""

    reach: Reach
    centres: dict[str, TrainingCentre] = field(default_factory=dict)  # by code
    batches: dict[tuple[str, str], Batch] = field(default_factory=dict)  # by (centre id, batch_ref)
    centres_by_id: dict[str, TrainingCentre] = field(default_factory=dict)

    def centre(self, row: dict[Any, Any]) -> TrainingCentre | Refusal:
        code = cell(row, "centre_code")
        if code is None:
            return [("centre_code", "required")]
        found = self.centres.get(code)
        # a centre out of reach is refused as an unknown one: its existence is not told
        if found is None or not centre_in_reach(self.reach, found):
            return [("centre_code", "known_centre")]
        return found

    def batch(self, row: dict[Any, Any]) -> Batch | Refusal:
        centre = self.centre(row)
        if isinstance(centre, list):
            return centre
        ref = cell(row, "batch_ref")
        if ref is None:
            return [("batch_ref", "required")]
        found = self.batches.get((centre.id, ref))
        return [("batch_ref", "known_batch")] if found is None else found

    def centre_of(self, batch: Batch) -> TrainingCentre:
        return self.centres_by_id[batch.centre_id]


async def index_batches(session: AsyncSession, ctx: ImportContext, rows: Rows, *, for_update: bool) -> BatchIndex:
    index = BatchIndex(reach=reach_of(ctx.actor))
    codes = {code for _, row in rows if (code := cell(row, "centre_code"))}
    index.centres = {c.code: c for c in await queries.centres_by_codes(session, codes)}
    index.centres_by_id = {c.id: c for c in index.centres.values()}
    refs = set()
    for _, row in rows:
        centre, ref = index.centres.get(cell(row, "centre_code") or ""), cell(row, "batch_ref")
        if centre is not None and ref is not None:
            refs.add((centre.id, ref))
    found = await queries.batches_by_refs(session, refs, for_update=for_update)
    index.batches = {(b.centre_id, b.batch_ref or ""): b for b in found}
    return index


async def sessions_by_batch(session: AsyncSession, batch_ids: set[str]) -> dict[str, list[BatchSession]]:
    """The sessions of the chunk's batches, by batch (one statement)."""
    found: dict[str, list[BatchSession]] = {}
    for s in await queries.sessions_of_batches(session, batch_ids):
        found.setdefault(s.batch_id, []).append(s)
    return found


def refuse(result: ChunkResult, row_number: int, errors: Refusal) -> None:
    result.refused.setdefault(row_number, []).extend(errors)
