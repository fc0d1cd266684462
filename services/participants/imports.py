"""Bulk registration from a CSV or XLSX file as scheduled jobs (survives restarts), on the kernel's
import machinery (pena.imports): the upload is read once, streamed, and stored as encrypted chunks;
each chunk is one transaction that registers its valid rows, records refused fields (row number,
field, rule: never a value), deletes the chunk and schedules the next. Re-uploading a file creates no
duplicates: a NIK already registered counts as a duplicate row.

A chunk is registered set-based (`register_many`): every row validated in Python with the same
rules as a single registration, one lookup of the chunk's NIK tokens and possible duplicates, then
one INSERT per table (participants, history, audit, outbox) and one NOTIFY for the relay."""

from __future__ import annotations

from typing import IO, Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import imports as bulk
from pena import parallel
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.ids import new_id
from pena.problems import Problem
from pena.scheduler import Job, schedule_job, wake_schedulers
from pena.settings import Settings, get_settings
from services.participants import queries
from services.participants.models import ImportJob
from services.participants.registration import (
    Preparation,
    Prepared,
    preparation_for,
    prepare_registration,
    register_prepared,
)
from services.participants.schemas import ParticipantCreate
from services.participants.views import cipher_for

JOB_KIND = "participants.import_chunk"
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


def layout() -> bulk.Layout:
    return bulk.Layout(REQUIRED_COLUMNS, OPTIONAL_COLUMNS, max_rows=MAX_ROWS, chunk_rows=CHUNK_ROWS)


async def create_import(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    clock: Clock,
    filename: str | None,
    file: IO[bytes],
) -> ImportJob:
    now = clock.now()
    job = ImportJob(
        id=new_id(),
        status="queued",
        filename=(filename or "")[:200] or None,
        requested_by=principal.subject,
        requested_client=principal.client_id,
        requested_roles=",".join(sorted(principal.roles)),
        requested_unit=principal.unit if isinstance(principal.unit, str) else None,
        created_at=now,
        updated_at=now,
    )
    stored = await bulk.store_upload(
        session,
        import_id=job.id,
        file=file,
        filename=filename,
        layout=layout(),
        cipher=cipher_for(settings.field_encryption_key),
    )
    job.total_rows = stored.total_rows
    if stored.total_rows >= 2 * parallel.MIN_PART:  # the workers start while the upload commits
        parallel.warm_up(__name__, workers=settings.worker_processes)
    session.add(job)
    await session.flush()
    await schedule_job(session, kind=JOB_KIND, key=f"{JOB_KIND}:{job.id}:0", due_at=now, payload={"import_id": job.id})
    await wake_schedulers(session)  # the uploader waits: the first chunk starts on commit, not at the next poll
    await record_audit(
        session,
        actor=principal,
        action="participant.import",
        subject_type="participant_import",
        subject_id=job.id,
        details={"rows": stored.total_rows},
    )
    return job


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


def process_rows(rows: list[tuple[int, dict[Any, Any]]], preparation: Preparation) -> tuple[Refusals, list[Prepared]]:
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


async def prepare_rows(
    rows: list[tuple[int, dict[Any, Any]]], preparation: Preparation
) -> tuple[Refusals, list[Prepared]]:
    """`process_rows` over the chunk, split across the worker processes (in this process when the
    chunk is small or no workers are configured); results in row order."""
    parts = await parallel.map_parts(process_rows, rows, preparation, workers=preparation.settings.worker_processes)
    refused: Refusals = {}
    prepared: list[Prepared] = []
    for part_refused, part_prepared in parts:
        refused.update(part_refused)
        prepared.extend(part_prepared)
    return refused, prepared


async def run_import_chunk(session: AsyncSession, job: Job, clock: Clock) -> None:
    settings = job.settings or get_settings()
    record = await queries.import_job(session, str(job.payload["import_id"]), for_update=True)
    if record is None or record.status == "done":
        return
    chunk = await bulk.next_chunk(session, record.id, cipher_for(settings.field_encryption_key))
    if chunk is None:  # every chunk processed (a redelivered job)
        return
    actor = Principal(
        subject=record.requested_by,
        client_id=record.requested_client,
        roles=frozenset((record.requested_roles or "").split(",")) - {""},
        scopes=frozenset(),
        unit=record.requested_unit,
    )
    record.status = "running"
    preparation = await preparation_for(session, actor=actor, settings=settings, clock=clock)
    rows = [(chunk.first_row + offset, row) for offset, row in enumerate(chunk.rows)]  # data rows from 1
    refused, prepared = await prepare_rows(rows, preparation)
    outcome = await register_prepared(session, preparation=preparation, prepared=prepared, purpose="bulk import")
    for row_number, errors in outcome.errors.items():
        refused[row_number] = [(e["field"], e["rule"]) for e in errors]
    record.created_rows += outcome.created
    record.duplicate_rows += outcome.duplicates
    record.error_rows += len(refused)
    await queries.insert_import_errors(
        session,
        [
            {"import_id": record.id, "row_number": row_number, "field": field[:60], "rule": rule[:60]}
            for row_number in sorted(refused)
            for field, rule in refused[row_number]
        ],
    )
    record.processed_rows = chunk.first_row - 1 + len(chunk.rows)
    await bulk.drop_chunk(session, record.id, chunk.seq)  # the plaintext rows are not kept, not even encrypted
    now = clock.now()
    record.updated_at = now
    if record.processed_rows >= record.total_rows:
        record.status = "done"
        record.finished_at = now
    else:
        await schedule_job(
            session,
            kind=JOB_KIND,
            key=f"{JOB_KIND}:{record.id}:{record.processed_rows}",
            due_at=now,
            payload={"import_id": record.id},
        )
    session.add(record)


async def import_errors_csv(session: AsyncSession, *, principal: Principal, import_id: str) -> str:
    await load_import(session, principal=principal, import_id=import_id)
    errors = await queries.import_errors(session, import_id)
    return bulk.csv_text(["row", "field", "rule"], [[e.row_number, e.field, e.rule] for e in errors])


async def load_import(session: AsyncSession, *, principal: Principal, import_id: str) -> ImportJob:
    record = await queries.import_job(session, import_id)
    # an import is seen by whoever started it, and by admins
    if record is None or not (principal.is_admin or record.requested_by == principal.subject):
        raise Problem(404, "Not found", f"no import with id {import_id}", type_="not-found")
    return record
