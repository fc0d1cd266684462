"""Bulk imports, written once for every service: an uploaded CSV or XLSX file is read ONCE, as a stream
(Starlette spools the upload to a temporary file; nothing holds the whole file in memory), checked
against the import's layout (required and optional columns, a row limit) and split into chunks of rows
kept encrypted in the kernel table `import_chunks`. A scheduled job then processes one chunk per
transaction and deletes it in that same transaction, so a crash or restart in the middle of an import
redoes exactly the chunk that was not committed: no row is lost and none is done twice, and the
plaintext rows are gone once processed.

The service decides what a row means (validation, registration, errors); this module knows files,
chunks and their storage. openpyxl reads XLSX in its read-only (streaming) mode."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import IO, Any

from sqlalchemy import delete, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.crypto import FieldCipher
from pena.http.screening import NUL
from pena.problems import field_error
from pena.tables import import_chunks

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class Layout:
    """What an import accepts: its columns (header names, case kept), a row limit and the chunk size
    (rows per transaction: large enough that per-statement costs vanish, small enough that a chunk's
    rows and locks stay around a second)."""

    required: tuple[str, ...]
    optional: tuple[str, ...] = ()
    max_rows: int = 1_000_000
    chunk_rows: int = 5000


@dataclass(frozen=True)
class StoredUpload:
    columns: list[str]
    total_rows: int
    chunks: int


@dataclass(frozen=True)
class Chunk:
    seq: int
    first_row: int  # the data row number of rows[0], from 1 (the header is not counted)
    rows: list[dict[Any, Any]]  # as csv.DictReader makes them: a missing cell None, extra cells under None


def file_sha256(file: IO[bytes]) -> str:
    """The upload's digest (an idempotency fingerprint), read in blocks; the file is rewound."""
    digest = hashlib.sha256()
    file.seek(0)
    for block in iter(lambda: file.read(1 << 20), b""):
        digest.update(block)
    file.seek(0)
    return digest.hexdigest()


def is_xlsx(file: IO[bytes], filename: str | None) -> bool:
    file.seek(0)
    head = file.read(4)
    file.seek(0)
    return head == _ZIP_MAGIC or (filename or "").lower().endswith(".xlsx")


def _cell(value: Any) -> str:
    """An XLSX cell as the text a CSV would hold: dates ISO 8601, whole numbers without '.0'."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _xlsx_lines(file: IO[bytes]) -> Iterator[list[str]]:
    from openpyxl import load_workbook  # imported on use: only XLSX uploads need it

    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise field_error("file", "xlsx", "the file is not a readable XLSX workbook") from exc
    try:
        sheet = workbook.worksheets[0]
        for values in sheet.iter_rows(values_only=True):
            line = [_cell(v) for v in values]
            while line and line[-1] == "":
                line.pop()  # openpyxl pads rows to the sheet's width
            yield line
    finally:
        workbook.close()


def _csv_lines(file: IO[bytes]) -> Iterator[list[str]]:
    file.seek(0)
    text = io.TextIOWrapper(file, encoding="utf-8-sig", errors="strict", newline="")
    try:
        yield from csv.reader(text)
    except UnicodeDecodeError as exc:
        raise field_error("file", "utf8", "the CSV must be UTF-8 encoded") from exc
    except csv.Error as exc:
        raise field_error("file", "csv_malformed", f"the CSV cannot be read: {exc}") from exc
    finally:
        text.detach()  # the upload stays open: it belongs to the request


def read_lines(file: IO[bytes], filename: str | None) -> Iterator[list[str]]:
    """The rows of an uploaded CSV or XLSX (its first sheet), header first, blank rows skipped; a
    U+0000 anywhere makes the file damaged, not data (422 naming `file`)."""
    lines = _xlsx_lines(file) if is_xlsx(file, filename) else _csv_lines(file)
    for line in lines:
        if not any(cell.strip() for cell in line):
            continue
        if any(NUL in cell for cell in line):
            raise field_error("file", "nul_character", "the file contains the NUL character (U+0000)")
        yield line


def as_row(columns: list[str], line: list[str]) -> dict[Any, Any]:
    """What csv.DictReader makes of a line: missing cells None, extra cells under the None key."""
    row: dict[Any, Any] = dict(zip(columns, line, strict=False))
    if len(line) > len(columns):
        row[None] = line[len(columns) :]
    for name in columns[len(line) :]:
        row[name] = None
    return row


def _header(lines: Iterator[list[str]], layout: Layout) -> list[str]:
    columns = [c.strip() for c in next(lines, [])]
    missing = [c for c in layout.required if c not in columns]
    if missing:
        raise field_error("file", "missing_columns", f"the file lacks column(s): {', '.join(missing)}")
    unknown = [c for c in columns if c not in layout.required + layout.optional]
    if unknown:
        raise field_error("file", "unknown_columns", f"the file has unknown column(s): {', '.join(unknown)}")
    return columns


def _sealed_chunks(
    file: IO[bytes], filename: str | None, layout: Layout, cipher: FieldCipher
) -> tuple[list[str], Iterator[tuple[int, int, str]]]:
    lines = read_lines(file, filename)
    columns = _header(lines, layout)

    def chunks() -> Iterator[tuple[int, int, str]]:
        batch: list[list[str]] = []
        first = 1
        for line in lines:
            batch.append(line)
            if first + len(batch) - 1 > layout.max_rows:
                raise field_error("file", "too_many_rows", f"at most {layout.max_rows} rows per import")
            if len(batch) == layout.chunk_rows:
                yield first, len(batch), cipher.encrypt(json.dumps({"columns": columns, "rows": batch}))
                first += len(batch)
                batch = []
        if batch:
            yield first, len(batch), cipher.encrypt(json.dumps({"columns": columns, "rows": batch}))

    return columns, chunks()


async def store_upload(
    session: AsyncSession,
    *,
    import_id: str,
    file: IO[bytes],
    filename: str | None,
    layout: Layout,
    cipher: FieldCipher,
) -> StoredUpload:
    """Reads the upload once and stores it as encrypted chunks of `layout.chunk_rows` rows, in the
    caller's transaction (a refused file leaves nothing). Parsing and encryption run in a worker thread,
    one chunk at a time: the event loop keeps serving, and memory holds one chunk, not the file."""
    columns, chunks = await asyncio.to_thread(_sealed_chunks, file, filename, layout, cipher)
    seq = total = 0
    while (chunk := await asyncio.to_thread(next, chunks, None)) is not None:
        first, count, sealed = chunk
        await session.execute(
            insert(import_chunks).values(
                import_id=import_id, seq=seq, first_row=first, row_count=count, content_enc=sealed
            )
        )
        seq += 1
        total += count
    if total == 0:
        raise field_error("file", "empty", "the file has no data rows")
    return StoredUpload(columns=columns, total_rows=total, chunks=seq)


async def next_chunk(session: AsyncSession, import_id: str, cipher: FieldCipher) -> Chunk | None:
    """The import's first chunk not yet processed (processed chunks are deleted), locked for the
    caller's transaction; None when every chunk is done."""
    found = (
        await session.execute(
            select(import_chunks.c.seq, import_chunks.c.first_row, import_chunks.c.content_enc)
            .where(import_chunks.c.import_id == import_id)
            .order_by(import_chunks.c.seq)
            .limit(1)
            .with_for_update()
        )
    ).first()
    if found is None:
        return None
    content = json.loads(await asyncio.to_thread(cipher.decrypt, found.content_enc))
    columns = content["columns"]
    return Chunk(seq=found.seq, first_row=found.first_row, rows=[as_row(columns, line) for line in content["rows"]])


async def drop_chunk(session: AsyncSession, import_id: str, seq: int) -> None:
    await session.execute(
        delete(import_chunks).where(import_chunks.c.import_id == import_id, import_chunks.c.seq == seq)
    )


async def drop_chunks(session: AsyncSession, import_id: str) -> None:
    await session.execute(delete(import_chunks).where(import_chunks.c.import_id == import_id))


def csv_text(header: list[str], rows: list[list[Any]]) -> str:
    """A small CSV document (e.g. an import's error file)."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()
