"""Import runs, written once for every service: a bulk import of one kind (participants' registrations,
training's batches and attendance, Monev's survey results...) from upload to the last chunk.

- `start_import` reads the upload once into encrypted chunks (pena.imports), records the run in the
  kernel table `import_runs` (who asked, with which roles and reach: the rows are checked against the
  uploader's reach, not the job's), audits it and schedules the first chunk job.
- `chunk_job(kinds)` is the service's job handler (`JOBS = {IMPORT_JOB: chunk_job(KINDS)}`): one chunk
  per transaction. It hands the chunk's rows to the kind's `process` (the service's set-based use
  case), records refused fields in `import_errors` (row, field, rule: never a value), counts, deletes
  the chunk and schedules the next in the same transaction, so a crash or restart redoes exactly the
  chunk that was not committed: nothing lost, nothing done twice.
- `load_run`, `errors_csv` and the templates serve the routes (pena/http/imports.py).

A service knows what a row means; this module knows runs, chunks, counts and errors."""

from __future__ import annotations

import io
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import insert, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import imports, parallel
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.crypto import FieldCipher
from pena.db import insert_rows
from pena.ids import new_id
from pena.problems import Problem
from pena.scheduler import Job, JobHandler, schedule_job, wake_schedulers
from pena.settings import Settings, get_settings
from pena.tables import import_errors, import_runs

IMPORT_JOB = "pena.import_chunk"

# the rows of one chunk: (data row number from 1, the header not counted; cells by column name, as
# csv.DictReader makes them: "" for an empty cell, None for a missing one, extra cells under None)
Rows = list[tuple[int, dict[Any, Any]]]


@dataclass
class ChunkResult:
    created: int = 0
    duplicates: int = 0  # rows already there (e.g. the same file uploaded again): counted, not refused
    refused: dict[int, list[tuple[str, str]]] = field(default_factory=dict)  # row number -> [(field, rule)]


@dataclass(frozen=True)
class ImportContext:
    import_id: str
    actor: Principal  # the uploader as at upload time (roles, scopes, unit): each row is checked against them
    settings: Settings
    clock: Clock
    # worker processes the chunk may spread its rows over (pena.parallel.iter_parts): the service's
    # PENA_WORKER_PROCESSES for a kind that `uses_workers` in a run of WORKERS_MIN_ROWS rows or more, else 0
    workers: int = 0


ProcessChunk = Callable[[AsyncSession, ImportContext, Rows], Awaitable[ChunkResult]]


@dataclass
class ImportKind:
    """One kind of import a service offers. `name` is stored on the run (and is the idempotency scope's
    prefix); `path` is its URL segment under `<prefix>/imports/` ("" for a service's only kind);
    `example` gives one value per column, the published template's second row."""

    name: str
    path: str
    layout: imports.Layout
    process: ProcessChunk
    example: Mapping[str, str]
    description: str
    audit_action: str  # the audit action of the upload, e.g. "participant.import"
    audit_subject: str = "import"
    # the chunk processor spreads its rows over worker processes (pena.parallel): an upload large
    # enough for them starts them (importing the processor's module) while it is stored
    uses_workers: bool = False

    @property
    def columns(self) -> tuple[str, ...]:
        return self.layout.required + self.layout.optional


WORKERS_MIN_ROWS = 50_000
"""Smaller runs stay in the service process: starting two worker interpreters (~1-1.5 s of CPU each,
they import the service) costs more than they save on a few chunks (bench.bulk_import, 2026-11-30:
10,000 rows took longer with them, 100,000 rows used 20-35 % less of the service process's CPU)."""


def _workers(kind: ImportKind, settings: Settings, total_rows: int) -> int:
    return settings.worker_processes if kind.uses_workers and total_rows >= WORKERS_MIN_ROWS else 0


def _cipher(settings: Settings) -> FieldCipher:
    return FieldCipher(settings.field_encryption_key)


async def start_import(
    session: AsyncSession,
    *,
    kind: ImportKind,
    principal: Principal,
    settings: Settings,
    clock: Clock,
    file: IO[bytes],
    filename: str | None,
) -> dict[str, Any]:
    """Stores the upload as chunks and records the run, in the caller's transaction (a refused file
    leaves nothing); the first chunk starts when it commits. Returns the run's row."""
    now = clock.now()
    import_id = new_id()
    stored = await imports.store_upload(
        session, import_id=import_id, file=file, filename=filename, layout=kind.layout, cipher=_cipher(settings)
    )
    if _workers(kind, settings, stored.total_rows):
        parallel.warm_up(kind.process.__module__, workers=settings.worker_processes)
    run = {
        "id": import_id,
        "kind": kind.name,
        "status": "queued",
        "filename": (filename or "")[:200] or None,
        "total_rows": stored.total_rows,
        "processed_rows": 0,
        "created_rows": 0,
        "duplicate_rows": 0,
        "error_rows": 0,
        "requested_by": principal.subject,
        "requested_client": principal.client_id,
        "requested_roles": ",".join(sorted(principal.roles)),
        "requested_unit": principal.unit if isinstance(principal.unit, str) else None,
        "requested_scopes": " ".join(sorted(principal.scopes)),
        "created_at": now,
        "updated_at": now,
        "finished_at": None,
    }
    await session.execute(insert(import_runs).values(run))
    await schedule_job(
        session, kind=IMPORT_JOB, key=f"{IMPORT_JOB}:{import_id}:0", due_at=now, payload={"import_id": import_id}
    )
    await wake_schedulers(session)  # the uploader waits: the first chunk starts on commit, not at the next poll
    await record_audit(
        session,
        actor=principal,
        action=kind.audit_action,
        subject_type=kind.audit_subject,
        subject_id=import_id,
        details={"rows": stored.total_rows, "kind": kind.name},
    )
    return run


async def _run(session: AsyncSession, import_id: str, *, for_update: bool = False) -> dict[str, Any] | None:
    statement = select(import_runs).where(import_runs.c.id == import_id)
    if for_update:
        statement = statement.with_for_update()
    found = (await session.execute(statement)).mappings().first()
    return dict(found) if found is not None else None


def _uploader(run: Mapping[str, Any]) -> Principal:
    return Principal(
        subject=run["requested_by"],
        client_id=run["requested_client"],
        roles=frozenset((run["requested_roles"] or "").split(",")) - {""},
        scopes=frozenset((run["requested_scopes"] or "").split()),  # a run stored without scopes may do nothing scoped
        unit=run["requested_unit"],
    )


def chunk_job(kinds: Sequence[ImportKind]) -> JobHandler:
    """The job handler processing the next chunk of an import run of one of `kinds`."""
    by_name = {kind.name: kind for kind in kinds}

    async def run_import_chunk(session: AsyncSession, job: Job, clock: Clock) -> None:
        settings = job.settings or get_settings()
        run = await _run(session, str(job.payload["import_id"]), for_update=True)
        if run is None or run["status"] == "done":
            return
        kind = by_name.get(run["kind"])
        if kind is None:  # a run of a kind this service does not know: fail loudly, retried with backoff
            raise RuntimeError(f"import {run['id']} is of unknown kind {run['kind']!r}")
        chunk = await imports.next_chunk(session, run["id"], _cipher(settings))
        if chunk is None:  # every chunk processed (a redelivered job)
            return
        context = ImportContext(
            import_id=run["id"],
            actor=_uploader(run),
            settings=settings,
            clock=clock,
            workers=_workers(kind, settings, run["total_rows"]),
        )
        rows = [(chunk.first_row + offset, row) for offset, row in enumerate(chunk.rows)]
        result = await kind.process(session, context, rows)
        await insert_rows(
            session,
            import_errors,
            [
                {"import_id": run["id"], "row_number": number, "field": name[:60], "rule": rule[:60]}
                for number in sorted(result.refused)
                for name, rule in result.refused[number]
            ],
        )
        await imports.drop_chunk(session, run["id"], chunk.seq)  # the plaintext rows are not kept, not even encrypted
        now = clock.now()
        processed = chunk.first_row - 1 + len(chunk.rows)
        done = processed >= run["total_rows"]
        await session.execute(
            update(import_runs)
            .where(import_runs.c.id == run["id"])
            .values(
                status="done" if done else "running",
                processed_rows=processed,
                created_rows=import_runs.c.created_rows + result.created,
                duplicate_rows=import_runs.c.duplicate_rows + result.duplicates,
                error_rows=import_runs.c.error_rows + len(result.refused),
                updated_at=now,
                finished_at=now if done else None,
            )
        )
        if not done:
            await schedule_job(
                session,
                kind=IMPORT_JOB,
                key=f"{IMPORT_JOB}:{run['id']}:{processed}",
                due_at=now,
                payload={"import_id": run["id"]},
            )

    return run_import_chunk


async def load_run(session: AsyncSession, *, principal: Principal, import_id: str) -> dict[str, Any]:
    """The run, for whoever started it and admins; anyone else gets the 404 of a missing one."""
    run = await _run(session, import_id)
    if run is None or not (principal.is_admin or run["requested_by"] == principal.subject):
        raise Problem(404, "Not found", f"no import with id {import_id}", type_="not-found")
    return run


async def errors_csv(session: AsyncSession, *, principal: Principal, import_id: str) -> str:
    """The run's refused fields as CSV: row, field, rule (never a value), in row order."""
    await load_run(session, principal=principal, import_id=import_id)
    found = await session.execute(
        select(import_errors.c.row_number, import_errors.c.field, import_errors.c.rule)
        .where(import_errors.c.import_id == import_id)
        .order_by(import_errors.c.row_number, import_errors.c.id)
    )
    return imports.csv_text(["row", "field", "rule"], [list(row) for row in found.all()])


def template_csv(kind: ImportKind) -> bytes:
    """The kind's template: the header row (every column it accepts, required first) and one example row."""
    return imports.csv_text(list(kind.columns), [[kind.example.get(c, "") for c in kind.columns]]).encode()


def template_xlsx(kind: ImportKind) -> bytes:
    """The same template as an XLSX workbook, every cell text (so an NIK or a code keeps its leading zeros)."""
    import xlsxwriter

    out = io.BytesIO()
    workbook = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False, "strings_to_urls": False})
    sheet = workbook.add_worksheet(kind.path or kind.name.rsplit(".", 1)[-1])
    bold = workbook.add_format({"bold": True})
    text = workbook.add_format({"num_format": "@"})
    for index, column in enumerate(kind.columns):
        sheet.set_column(index, index, max(12, len(column) + 2), text)
        sheet.write_string(0, index, column, bold)
        sheet.write_string(1, index, kind.example.get(column, ""))
    workbook.close()
    return out.getvalue()
