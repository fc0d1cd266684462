"""The kernel's tabular answers (pena/http/tabular.py): Accept negotiation, small-cell suppression with
derived figures, formula-safe CSV cells, XLSX strings that never become formulas."""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, date, datetime

import openpyxl
import pytest
from starlette.requests import Request

from pena.http.tabular import XLSX_MEDIA_TYPE, Column, cell, suppress, tabular_response, wanted_format


def request(accept: str | None) -> Request:
    headers = [] if accept is None else [(b"accept", accept.encode())]
    return Request({"type": "http", "method": "GET", "path": "/", "headers": headers, "query_string": b""})


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "json"),
        ("*/*", "json"),
        ("application/json", "json"),
        ("text/csv", "csv"),
        ("text/csv; charset=utf-8", "csv"),
        (XLSX_MEDIA_TYPE, "xlsx"),
        (f"text/csv;q=0.5, {XLSX_MEDIA_TYPE}", "xlsx"),
        ("text/csv, application/json", "csv"),  # a tie: the first listed
        ("application/json;q=0.1, text/csv;q=0.9", "csv"),
        ("text/csv;q=0", "json"),  # q=0 means "not this"
        ("image/png", "json"),  # nothing known: the route's default
        ("text/csv;q=abc", "json"),
    ],
)
def test_accept_negotiation(accept: str | None, expected: str) -> None:
    assert wanted_format(request(accept)) == expected


COLUMNS = (
    Column("group"),
    Column("families", count=True),
    Column("income_mean", base="families"),
    Column("surveys", count=True),
    Column("welfare_mean", base="surveys"),
)


def test_small_counts_and_what_is_derived_from_them_are_suppressed() -> None:
    rows = [
        {"group": "big", "families": 12, "income_mean": 1.5, "surveys": 7, "welfare_mean": 0.4},
        {"group": "one family", "families": 1, "income_mean": 250_000.0, "surveys": 6, "welfare_mean": 0.5},
        {"group": "none", "families": 0, "income_mean": None, "surveys": 3, "welfare_mean": 0.7},
        {"group": "edge", "families": 5, "income_mean": 2.0, "surveys": 4, "welfare_mean": 0.1},
    ]
    out = {r["group"]: r for r in suppress(rows, COLUMNS, 5)}
    assert out["big"] == rows[0] | {"suppressed": ""}
    assert out["one family"] == {
        "group": "one family",
        "families": None,
        "income_mean": None,
        "surveys": 6,
        "welfare_mean": 0.5,
        "suppressed": "families;income_mean",
    }
    assert out["none"]["families"] == 0  # a zero discloses no one
    assert (out["none"]["surveys"], out["none"]["welfare_mean"], out["none"]["suppressed"]) == (
        None,
        None,
        "surveys;welfare_mean",
    )
    assert (out["edge"]["families"], out["edge"]["surveys"], out["edge"]["suppressed"]) == (
        5,
        None,
        "surveys;welfare_mean",
    )
    assert rows[1]["families"] == 1  # the input rows are left as they were


def test_csv_cells_are_formula_safe_and_dates_iso() -> None:
    assert cell("=HYPERLINK(1)") == "'=HYPERLINK(1)"
    assert cell("-1") == "'-1"  # text starting like a formula, even a number-like one
    assert cell(-200_000.0) == "-200000.0"  # a number is written as a number
    assert cell(None) == ""
    assert cell(date(2023, 7, 31)) == "2023-07-31"
    assert cell(datetime(2026, 1, 5, 3, 0, tzinfo=UTC)) == "2026-01-05T03:00:00+00:00"


async def _body(response: object) -> bytes:
    chunks = [c if isinstance(c, bytes) else c.encode() async for c in response.body_iterator]  # type: ignore[attr-defined]
    return b"".join(chunks)


def test_csv_and_xlsx_carry_the_same_rows_and_the_suppressed_column() -> None:
    rows = [
        {"group": "=cmd|' /C calc'!A0", "families": 9, "income_mean": 3.25, "surveys": 9, "welfare_mean": 0.5},
        {"group": "small", "families": 2, "income_mean": 9.0, "surveys": 9, "welfare_mean": 0.5},
    ]
    as_csv = asyncio.run(_body(tabular_response("csv", filename="t", columns=COLUMNS, rows=rows, min_cell_size=5)))
    parsed = list(csv.DictReader(io.StringIO(as_csv.decode())))
    assert parsed[0]["group"] == "'=cmd|' /C calc'!A0"
    assert parsed[1]["families"] == parsed[1]["income_mean"] == ""
    assert parsed[1]["suppressed"] == "families;income_mean"

    as_xlsx = asyncio.run(_body(tabular_response("xlsx", filename="t", columns=COLUMNS, rows=rows, min_cell_size=5)))
    sheet = openpyxl.load_workbook(io.BytesIO(as_xlsx)).active
    assert sheet is not None
    assert [c.value for c in sheet[1]] == ["group", "families", "income_mean", "surveys", "welfare_mean", "suppressed"]
    formula_like = sheet["A2"]
    assert formula_like.value == "=cmd|' /C calc'!A0"
    assert formula_like.data_type == "s"  # a string cell: the spreadsheet never evaluates it
    assert sheet["B2"].value == 9
    assert sheet["C2"].value == 3.25
    assert sheet["B3"].value is None
    assert sheet["F3"].value == "families;income_mean"
