"""Bulk registration from a CSV or XLSX file, the import kind `participants` on the kernel's import
runs (pena.import_runs, pena.imports): the upload is read once, streamed, and stored as encrypted
chunks; each chunk is one transaction (a kernel job) that registers its valid rows (`register_rows`),
records refused fields (row number, field, rule: never a value), deletes the chunk and schedules the
next. Re-uploading a file creates no duplicates: a NIK already registered counts as a duplicate row.

A chunk is registered set-based: every row validated in Python with the same rules as a single
registration, tokenised and encrypted (`process_rows`, spread over worker processes: pena.parallel),
then one lookup of the chunk's NIK tokens and possible duplicates, one INSERT per table
(participants, history, audit, outbox) and one NOTIFY for the relay (`register_prepared`)."""

from __future__ import annotations

import contextlib
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import imports as bulk
from pena import parallel
from pena.import_runs import ChunkResult, ImportContext, ImportKind, Rows
from services.participants.registration import (
    BulkOutcome,
    Preparation,
    Prepared,
    preparation_for,
    prepare_registration,
    register_prepared,
)
from services.participants.schemas import ParticipantCreate

MAX_ROWS = 1_000_000
# rows per transaction: large enough that the per-statement costs vanish, small enough that a chunk
# (all its rows held in memory, its locks held) stays around a second or two
CHUNK_ROWS = 5000
# parts of a chunk per worker process (`register_rows`): the first part is registered while the
# workers prepare the others (bench.bulk_import, docs/benchmarks.md "Bulk import: ... perfimport2")
PARTS_PER_WORKER = 2
REQUIRED_COLUMNS = ("nik", "kk_number", "full_name", "birth_date", "sex", "region_code")
OPTIONAL_COLUMNS = (
    "business_field",
    "assistance_programmes",
    "dtsen_decile",
    "household_size",
    "baseline_monthly_income",
    "status",
    "address",
    "phone",
    "business_description",
    "potential_notes",
    "consent_purpose",
    "consent_given_on",
    "consent_recorded_by",
)
CONSENT_COLUMNS = {"consent_purpose": "purpose", "consent_given_on": "given_on", "consent_recorded_by": "recorded_by"}
# the published template's example row (GET /v1/participants/imports/templates/participants)
EXAMPLE_ROW = {
    "nik": "1371015205900001",
    "kk_number": "1371012001150003",
    "full_name": "Siti Rahmawati",
    "birth_date": "1990-05-12",
    "sex": "F",
    "region_code": "1371011001",
    "business_field": "fashion_menjahit",
    "assistance_programmes": "PKH;BPNT",
    "dtsen_decile": "1",
    "household_size": "4",
    "baseline_monthly_income": "600000",
    "status": "candidate",
    "address": "Jl. Sutomo No. 12, Padang",
    "phone": "+6281234567890",
    "business_description": "Jahit pakaian dan permak",
    "potential_notes": "Sudah punya mesin jahit",
    "consent_purpose": "PENA programme participation and follow-up",
    "consent_given_on": "2026-10-01",
    "consent_recorded_by": "fac-padang-01",
}


def layout() -> bulk.Layout:
    return bulk.Layout(REQUIRED_COLUMNS, OPTIONAL_COLUMNS, max_rows=MAX_ROWS, chunk_rows=CHUNK_ROWS)


def _row_model(row: dict[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {k: (v or "").strip() for k, v in row.items() if k is not None}
    for name in (
        "business_field",
        "dtsen_decile",
        "household_size",
        "baseline_monthly_income",
        "status",
        "address",
        "phone",
        "business_description",
        "potential_notes",
    ):
        if values.get(name) == "":
            values.pop(name)
    consent = {field: values.pop(column) for column, field in CONSENT_COLUMNS.items() if values.get(column)}
    for column in CONSENT_COLUMNS:
        values.pop(column, None)
    if consent:
        values["consent"] = consent  # incomplete consent is refused row by row, naming the field
    if "assistance_programmes" in values:
        values["assistance_programmes"] = [p.strip() for p in values["assistance_programmes"].split(";") if p.strip()]
    return values


def _pydantic_errors(exc: ValidationError) -> list[tuple[str, str]]:
    return [(".".join(str(p) for p in e["loc"][:1]) or "row", str(e["type"])) for e in exc.errors()]


Refusals = dict[int, list[tuple[str, str]]]  # row number -> [(field, rule)]


def process_rows(rows: Rows, preparation: Preparation) -> tuple[Refusals, list[Prepared]]:
    """The per-row work of a chunk, without the database: each row read into the request model (the
    API's validation), then the registration rules, keyed tokens and encryption
    (`prepare_registration`). Pure and picklable both ways: runs in a worker process (pena.parallel)."""
    refused: Refusals = {}
    prepared: list[Prepared] = []
    for row_number, row in rows:
        try:
            data = ParticipantCreate.model_validate(_row_model(row))
        except ValidationError as exc:
            refused[row_number] = _pydantic_errors(exc)
            continue
        ready = prepare_registration(row_number, data, preparation)
        if isinstance(ready, list):
            refused[row_number] = [(e["field"], e["rule"]) for e in ready]
        else:
            prepared.append(ready)
    return refused, prepared


async def register_rows(session: AsyncSession, context: ImportContext, rows: Rows) -> ChunkResult:
    """One chunk of a bulk registration: every row validated with the same rules as a single
    registration (`process_rows`), the valid ones registered set-based (`register_prepared`) as the
    uploader. With worker processes (large imports), the chunk goes to them in parts (two per
    worker), and each part is registered, in row order, while the workers prepare the next ones: the
    same outcome as the chunk in one piece (`BulkOutcome` carries the earlier parts' rows)."""
    preparation = await preparation_for(session, actor=context.actor, settings=context.settings, clock=context.clock)
    workers = context.workers  # large imports only (pena.import_runs.WORKERS_MIN_ROWS)
    refused: Refusals = {}
    outcome = BulkOutcome()
    parts = parallel.iter_parts(process_rows, rows, preparation, workers=workers, per_worker=PARTS_PER_WORKER)
    async with contextlib.aclosing(parts):
        async for part_refused, part_prepared in parts:
            refused.update(part_refused)
            await register_prepared(
                session, preparation=preparation, prepared=part_prepared, purpose="bulk import", outcome=outcome
            )
    for row_number, errors in outcome.errors.items():
        refused[row_number] = [(e["field"], e["rule"]) for e in errors]
    return ChunkResult(created=outcome.created, duplicates=outcome.duplicates, refused=refused)


REGISTRATIONS = ImportKind(
    name="participants",
    path="",
    layout=layout(),
    process=register_rows,
    example=EXAMPLE_ROW,
    description="Bulk registration",
    audit_action="participant.import",
    audit_subject="participant_import",
    uses_workers=True,
)
KINDS = [REGISTRATIONS]
