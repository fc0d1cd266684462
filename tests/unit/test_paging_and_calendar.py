"""Kernel paging (typed cursors, pages from limit + 1 rows) and the business calendar."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime, timedelta

import pytest

from pena.clock import (
    ManualClock,
    business_date,
    business_today,
    end_of_business_day,
    start_of_business_day,
)
from pena.pagination import Page, PageRequest, decode_cursor, encode_cursor, keyset_page, read_cursor
from pena.problems import Problem

WIB = "Asia/Jakarta"


def test_keyset_page_cuts_the_extra_row_and_points_after_the_last_row_kept() -> None:
    rows = [{"code": c} for c in "abc"]
    page = keyset_page(rows, PageRequest(limit=2), key=lambda r: {"code": r["code"]}, item=lambda r: r["code"])
    assert page.items == ["a", "b"]
    assert page.limit == 2
    assert page.next_cursor is not None
    assert decode_cursor(page.next_cursor) == {"code": "b"}
    last = keyset_page(rows[:2], PageRequest(limit=2), key=lambda r: {"code": r["code"]}, item=lambda r: r["code"])
    assert last.items == ["a", "b"]
    assert last.next_cursor is None
    empty: Page[str] = keyset_page([], PageRequest(limit=2), key=lambda r: {}, item=lambda r: r)
    assert empty.items == []
    assert empty.next_cursor is None


def test_read_cursor_types_the_position_and_refuses_what_it_did_not_write() -> None:
    at = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
    cursor = encode_cursor({"at": at.isoformat(), "start": "2026-01-05", "id": "x-1"})
    after = read_cursor(PageRequest(cursor=cursor), ("at", datetime), ("start", date), ("id", str))
    assert after == (at, date(2026, 1, 5), "x-1")
    assert read_cursor(PageRequest(), ("id", str)) is None
    not_a_map = base64.urlsafe_b64encode(b"[1]").decode()
    for bad in ("%%%", not_a_map, encode_cursor({"id": "x"}), encode_cursor({"at": "yesterday", "id": "x"})):
        with pytest.raises(Problem) as caught:
            read_cursor(PageRequest(cursor=bad), ("at", datetime), ("id", str))
        assert caught.value.status == 422
        assert caught.value.errors == [
            {"field": "cursor", "rule": "invalid_cursor", "message": "cursor is not one this API returned"}
        ]


def test_business_days_are_taken_in_the_configured_zone() -> None:
    late_evening_utc = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)  # 01:00 WIB on 6 January
    assert business_date(late_evening_utc, WIB) == date(2026, 1, 6)
    assert business_date(late_evening_utc, "UTC") == date(2026, 1, 5)
    assert business_today(ManualClock(late_evening_utc), WIB) == date(2026, 1, 6)
    start, end = start_of_business_day(date(2026, 1, 6), WIB), end_of_business_day(date(2026, 1, 6), WIB)
    assert start == datetime(2026, 1, 5, 17, 0, tzinfo=UTC)
    assert end - start == timedelta(days=1)
    assert end.utcoffset() == timedelta(hours=7)
