"""Tabular answers (CSV and XLSX) written once for every service: content negotiation on `Accept`,
formula-safe cells, and small-cell suppression of aggregates.

A route that lists or aggregates declares `responses=TABULAR_RESPONSES` (the two media types appear
in the OpenAPI document next to its JSON) and asks `wanted_format(request)`: `application/json`
(also `*/*` or no `Accept`) answers the JSON model as before, `text/csv` or the XLSX media type a
file with the same rows and filters. CSV is streamed row by row (the existing `CsvResponse` media
type); XLSX is written by XlsxWriter in constant-memory mode (rows go to a temporary file, not held
in memory) and then streamed in chunks.

Suppression (`suppress`): a column marked `count=True` is an aggregate count of persons or families;
a value from 1 to `min_cell_size - 1` (`PENA_MIN_CELL_SIZE`, default 5) is left empty, and so is every
column whose `base` is that count (a mean or a median over the same group). Zeros are shown: they
disclose no one. The row's `suppressed` column names the emptied columns. Rows listing persons (a
roster) have no count columns and are never suppressed: their access rule is the route's policy."""

from __future__ import annotations

import asyncio
import csv
import io
import tempfile
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import IO, Any, Literal

from fastapi import Request
from fastapi.responses import StreamingResponse

CSV_MEDIA_TYPE = "text/csv"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
JSON_MEDIA_TYPE = "application/json"
SUPPRESSED = "suppressed"
TabularFormat = Literal["json", "csv", "xlsx"]
_BY_MEDIA_TYPE: dict[str, TabularFormat] = {JSON_MEDIA_TYPE: "json", CSV_MEDIA_TYPE: "csv", XLSX_MEDIA_TYPE: "xlsx"}
_CHUNK = 64 * 1024

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""Cell starts a spreadsheet treats as a formula (OWASP, CSV injection)."""

TABULAR_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": (
            "JSON by default; the same rows as CSV (`Accept: text/csv`) or XLSX (`Accept: " + XLSX_MEDIA_TYPE + "`),"
            " aggregate cells below PENA_MIN_CELL_SIZE left empty and named in the `suppressed` column"
        ),
        "content": {
            CSV_MEDIA_TYPE: {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        },
    }
}
"""`responses=` of a route that answers JSON, CSV or XLSX: both file media types in the OpenAPI document."""


def cell(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text: a text starting like a formula gets a leading `'`
    (numbers are numbers: -200000 stays a negative income change). Dates and moments in ISO 8601."""
    if isinstance(value, int | float):
        return str(value)
    text = "" if value is None else value.isoformat() if isinstance(value, date) else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def wanted_format(request: Request) -> TabularFormat:
    """The format the `Accept` header prefers among JSON, CSV and XLSX (RFC 9110 quality values; the
    first listed wins a tie). No header, `*/*` or only unknown types: JSON, the route's default."""
    best: tuple[float, int, TabularFormat] | None = None
    for position, part in enumerate(request.headers.get("accept", "").split(",")):
        media_type, *params = (p.strip() for p in part.split(";"))
        found = _BY_MEDIA_TYPE.get(media_type.lower())
        if found is None:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if quality > 0 and (best is None or (quality, -position) > (best[0], best[1])):
            best = (quality, -position, found)
    return best[2] if best else "json"


@dataclass(frozen=True)
class Column:
    """One column of an export: `key` in the row mappings, `header` in the file (default the key).
    `count`: an aggregate count, suppressed when small. `base`: a figure derived from the count in that
    column, suppressed with it."""

    key: str
    header: str | None = None
    count: bool = False
    base: str | None = None

    @property
    def title(self) -> str:
        return self.header or self.key


def suppress(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[Column], min_cell_size: int
) -> Iterator[dict[str, Any]]:
    """Each row with small counts (1 .. min_cell_size-1) and the figures derived from them emptied,
    and a `suppressed` entry naming them (`;`-separated, empty when nothing was)."""
    for row in rows:
        out = dict(row)
        small = {
            c.key
            for c in columns
            if c.count and isinstance(row.get(c.key), int) and 0 < int(row[c.key]) < min_cell_size
        }
        hidden = small | {c.key for c in columns if c.base is not None and c.base in small}
        for key in hidden:
            out[key] = None
        out[SUPPRESSED] = ";".join(c.title for c in columns if c.key in hidden)
        yield out


def _csv_lines(columns: Sequence[Column], rows: Iterable[Mapping[str, Any]]) -> Iterator[str]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def flush() -> str:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    writer.writerow([c.title for c in columns])
    yield flush()
    for row in rows:
        writer.writerow([cell(row.get(c.key)) for c in columns])
        yield flush()


def _write_xlsx(handle: IO[bytes], columns: Sequence[Column], rows: Iterable[Mapping[str, Any]], sheet: str) -> None:
    import xlsxwriter

    # strings are written as strings, never as formulas or links (the CSV's formula guard, natively)
    workbook = xlsxwriter.Workbook(
        handle, {"constant_memory": True, "strings_to_formulas": False, "strings_to_urls": False}
    )
    worksheet = workbook.add_worksheet(sheet[:31])
    bold = workbook.add_format({"bold": True})
    for index, column in enumerate(columns):
        worksheet.write_string(0, index, column.title, bold)
    for number, row in enumerate(rows, start=1):
        for index, column in enumerate(columns):
            value = row.get(column.key)
            if value is None:
                continue
            if isinstance(value, bool):
                worksheet.write_boolean(number, index, value)
            elif isinstance(value, int | float):
                worksheet.write_number(number, index, value)
            elif isinstance(value, date):  # datetime too: ISO 8601 text keeps the offset Excel would drop
                worksheet.write_string(number, index, value.isoformat())
            else:
                worksheet.write_string(number, index, str(value))
    workbook.close()


async def _xlsx_chunks(columns: Sequence[Column], rows: list[Mapping[str, Any]], sheet: str) -> AsyncIterator[bytes]:
    with tempfile.TemporaryFile() as handle:
        await asyncio.to_thread(_write_xlsx, handle, columns, rows, sheet)
        handle.seek(0)
        while chunk := await asyncio.to_thread(handle.read, _CHUNK):
            yield chunk


def tabular_response(
    fmt: Literal["csv", "xlsx"],
    *,
    filename: str,
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Any]],
    min_cell_size: int | None = None,
) -> StreamingResponse:
    """The rows as a CSV or XLSX download named `filename` (without extension). With `min_cell_size`
    the rows are suppressed first (`suppress`) and the file gets the `suppressed` column."""
    columns = list(columns)
    if min_cell_size is not None:
        rows = suppress(rows, columns, min_cell_size)
        columns.append(Column(SUPPRESSED))
    disposition = {"Content-Disposition": f'attachment; filename="{filename}.{fmt}"'}
    if fmt == "csv":
        return StreamingResponse(
            _csv_lines(columns, rows), media_type=f"{CSV_MEDIA_TYPE}; charset=utf-8", headers=disposition
        )
    return StreamingResponse(
        _xlsx_chunks(columns, list(rows), filename), media_type=XLSX_MEDIA_TYPE, headers=disposition
    )
