"""Bulk registration from a CSV or XLSX file, the import kind `participants` on the kernel's import
runs (pena.import_runs, pena.imports): the upload is read once, streamed, and stored as encrypted
chunks; each chunk is one transaction (a kernel job) that registers its valid rows (`register_rows`),
records refused fields (row number, field, rule: never a value), deletes the chunk and schedules the
next. Re-uploading a file creates no duplicates: a NIK already registered counts as a duplicate row.

A chunk is registered set-based (`register_many`): every row validated in Python with the same
rules as a single registration, one lookup of the chunk's NIK tokens and possible duplicates, then
one INSERT per table (participants, history, audit, outbox) and one NOTIFY for the relay."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import imports as bulk
from pena.import_runs import ChunkResult, ImportContext, ImportKind, Rows
from services.participants.registration import register_many
from services.participants.schemas import ParticipantCreate

MAX_ROWS = 1_000_000
# rows per transaction: large enough that the per-statement costs vanish, small enough that a chunk
# (all its rows held in memory, its locks held) stays around a second or two
CHUNK_ROWS = 5000
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


async def register_rows(session: AsyncSession, context: ImportContext, rows: Rows) -> ChunkResult:
    """One chunk of a bulk registration: every row validated with the same rules as a single
    registration, the valid ones registered set-based (`register_many`) as the uploader."""
    refused: dict[int, list[tuple[str, str]]] = {}  # row number -> (field, rule)
    valid: list[tuple[int, ParticipantCreate]] = []
    for row_number, row in rows:
        try:
            valid.append((row_number, ParticipantCreate.model_validate(_row_model(row))))
        except ValidationError as exc:
            refused[row_number] = _pydantic_errors(exc)
    outcome = await register_many(
        session,
        actor=context.actor,
        settings=context.settings,
        clock=context.clock,
        items=[data for _, data in valid],
        purpose="bulk import",
    )
    for index, errors in outcome.errors.items():
        refused[valid[index][0]] = [(e["field"], e["rule"]) for e in errors]
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
)
KINDS = [REGISTRATIONS]
