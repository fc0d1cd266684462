"""Injected time. Use cases and schedulers ask a clock, so tests move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from pena.durations import add_duration, parse_duration


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class ManualClock:
    """A clock that only moves when told; for tests and demos."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)

    def now(self) -> datetime:
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when

    def advance(self, delta: timedelta | str) -> datetime:
        self._now = add_duration(self._now, parse_duration(delta) if isinstance(delta, str) else delta)
        return self._now


class OffsetClock:
    """System time shifted by a calendar duration; lets a demo or e2e test "move 3 months on"."""

    def __init__(self, offset: str | None = None) -> None:
        self.offset = offset

    def now(self) -> datetime:
        real = datetime.now(UTC)
        return add_duration(real, parse_duration(self.offset)) if self.offset else real


def business_today(clock: Clock, tz: str = "Asia/Jakarta") -> date:
    """The calendar date of business facts (decision dates, visit dates) in the deployment's zone."""
    return clock.now().astimezone(ZoneInfo(tz)).date()


def end_of_business_day(day: date, tz: str = "Asia/Jakarta") -> datetime:
    """The first instant after `day` in the business zone: "as of 31 July" means before this."""
    return datetime.combine(day + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(tz))
