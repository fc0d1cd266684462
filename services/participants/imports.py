"""Bulk CSV registration as a scheduled job (survives restarts): the upload is stored encrypted, then
processed in chunks; each chunk is one transaction that registers its valid rows, records refused
fields (row number, field, rule: never a value) and schedules the next chunk. Re-uploading a file
creates no duplicates: a NIK already registered counts as a duplicate row.

A chunk is registered set-based (`register_many`): every row validated in Python with the same
rules as a single registration, one lookup of the chunk's NIK tokens and possible duplicates, then
one INSERT per table (participants, history, audit, outbox) and one NOTIFY for the relay."""

from __future__ import annotations

import csv
import io
import itertools
from typing import Any

from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.http.uploads import uploaded_text
from pena.ids import new_id
from pena.problems import Problem, field_error
from pena.scheduler import Job, schedule_job, wake_schedulers
from pena.settings import Settings, get_settings
from services.participants import queries
from services.participants.models import ImportJob
from services.participants.registration import register_many
from services.participants.schemas import ParticipantCreate
from services.participants.views import cipher_for

JOB_KIND = "participants.import_chunk"
MAX_ROWS = 100_000
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


def _reader(text: str) -> csv.DictReader[str]:
    reader = csv.DictReader(io.StringIO(text))
    reader.fieldnames = [c.strip() for c in (reader.fieldnames or [])]
    return reader


def parse_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the data rows; a file the csv module cannot read (e.g. a bare carriage return
    inside an unquoted field) is the 422 `csv_malformed` problem on `file`, not a server error."""
    try:
        reader = _reader(text)
        return list(reader.fieldnames or []), list(reader)
    except csv.Error as exc:
        raise field_error("file", "csv_malformed", f"the CSV cannot be read: {exc}") from exc


def chunk_rows(text: str, start: int, count: int) -> list[dict[str, str]]:
    """Data rows start..start+count (0-based) as `parse_rows` numbers them: blank lines skipped."""
    reader = _reader(text)
    lines = (line for line in reader.reader if line)  # the rows before the chunk are not made dicts
    return [reader_row(reader, line) for line in itertools.islice(lines, start, start + count)]


def reader_row(reader: csv.DictReader[str], line: list[str]) -> dict[str, str]:
    """What DictReader makes of a line: missing cells None, extra cells under the None key."""
    names = list(reader.fieldnames or [])
    row: dict[Any, Any] = dict(zip(names, line, strict=False))
    if len(line) > len(names):
        row[None] = line[len(names) :]
    for name in names[len(line) :]:
        row[name] = None
    return row


async def create_import(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    clock: Clock,
    filename: str | None,
    content: bytes,
) -> ImportJob:
    if len(content) > settings.max_upload_bytes:
        raise field_error("file", "too_large", f"the CSV is limited to {settings.max_upload_bytes} bytes", status=413)
    text = uploaded_text(content, field="file")
    columns, rows = parse_rows(text)
    missing = [c for c in REQUIRED_COLUMNS if c not in columns]
    if missing:
        raise field_error("file", "missing_columns", f"the CSV lacks column(s): {', '.join(missing)}")
    unknown = [c for c in columns if c not in REQUIRED_COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise field_error("file", "unknown_columns", f"the CSV has unknown column(s): {', '.join(unknown)}")
    if not rows:
        raise field_error("file", "empty", "the CSV has no data rows")
    if len(rows) > MAX_ROWS:
        raise field_error("file", "too_many_rows", f"at most {MAX_ROWS} rows per import")
    now = clock.now()
    job = ImportJob(
        id=new_id(),
        status="queued",
        filename=(filename or "")[:200] or None,
        content_enc=cipher_for(settings.field_encryption_key).encrypt(text),
        total_rows=len(rows),
        requested_by=principal.subject,
        requested_client=principal.client_id,
        requested_roles=",".join(sorted(principal.roles)),
        requested_unit=principal.unit if isinstance(principal.unit, str) else None,
        created_at=now,
        updated_at=now,
    )
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
        details={"rows": len(rows)},
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


async def run_import_chunk(session: AsyncSession, job: Job, clock: Clock) -> None:
    settings = job.settings or get_settings()
    record = await queries.import_job(session, str(job.payload["import_id"]), for_update=True)
    if record is None or record.status == "done" or record.content_enc is None:
        return
    start = record.processed_rows
    chunk = chunk_rows(cipher_for(settings.field_encryption_key).decrypt(record.content_enc), start, CHUNK_ROWS)
    actor = Principal(
        subject=record.requested_by,
        client_id=record.requested_client,
        roles=frozenset((record.requested_roles or "").split(",")) - {""},
        scopes=frozenset(),
        unit=record.requested_unit,
    )
    record.status = "running"
    refused: dict[int, list[tuple[str, str]]] = {}  # row number -> (field, rule)
    valid: list[tuple[int, ParticipantCreate]] = []
    for offset, row in enumerate(chunk):
        row_number = start + offset + 1  # data rows from 1; the header is not counted
        try:
            valid.append((row_number, ParticipantCreate.model_validate(_row_model(row))))
        except ValidationError as exc:
            refused[row_number] = _pydantic_errors(exc)
    outcome = await register_many(
        session, actor=actor, settings=settings, clock=clock, items=[data for _, data in valid], purpose="bulk import"
    )
    for index, errors in outcome.errors.items():
        refused[valid[index][0]] = [(e["field"], e["rule"]) for e in errors]
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
    record.processed_rows = start + len(chunk)
    now = clock.now()
    record.updated_at = now
    if len(chunk) < CHUNK_ROWS or record.processed_rows >= record.total_rows:
        record.status = "done"
        record.finished_at = now
        record.content_enc = None  # the plaintext identities are no longer kept, not even encrypted
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
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["row", "field", "rule"])
    for error in await queries.import_errors(session, import_id):
        writer.writerow([error.row_number, error.field, error.rule])
    return out.getvalue()


async def load_import(session: AsyncSession, *, principal: Principal, import_id: str) -> ImportJob:
    record = await queries.import_job(session, import_id)
    # an import is seen by whoever started it, and by admins
    if record is None or not (principal.is_admin or record.requested_by == principal.subject):
        raise Problem(404, "Not found", f"no import with id {import_id}", type_="not-found")
    return record
