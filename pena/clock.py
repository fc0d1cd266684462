"""Injected time. Use cases and schedulers ask a clock, so tests move time instead of sleeping."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
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


# ------------------------------------------------------------------ the business calendar
# Business facts (decision and effective dates, visit dates, "as of" days, calendar-month waves) are
# read on the deployment's business zone, `settings.business_timezone` (Asia/Jakarta, WIB, by
# default; it has no daylight saving). Every service asks these functions; none builds its own zone.


@lru_cache(maxsize=8)
def business_zone(tz: str) -> ZoneInfo:
    return ZoneInfo(tz)


def business_time(moment: datetime, tz: str) -> datetime:
    """`moment` on the business zone's wall clock; a naive moment is taken as UTC."""
    aware = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return aware.astimezone(business_zone(tz))


def business_date(moment: datetime, tz: str) -> date:
    """The business calendar date `moment` falls on."""
    return business_time(moment, tz).date()


def business_today(clock: Clock, tz: str) -> date:
    """Today's date in the business zone, on the injected clock."""
    return business_date(clock.now(), tz)


def start_of_business_day(day: date, tz: str) -> datetime:
    """The first instant of `day` in the business zone."""
    return datetime.combine(day, time(0, 0), tzinfo=business_zone(tz))


def end_of_business_day(day: date, tz: str) -> datetime:
    """The first instant after `day` in the business zone: "as of 31 July" means before this."""
    return start_of_business_day(day + timedelta(days=1), tz)
