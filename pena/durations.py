"""ISO-8601 durations with calendar months: 30 November + P3M = 28/29 February (clamped to month end)."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import TypeVar

from dateutil.relativedelta import relativedelta

T = TypeVar("T", datetime, date)

_ISO = re.compile(
    r"^P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<weeks>\d+)W)?(?:(?P<days>\d+)D)?"
    r"(?:T(?:(?P<hours>\d+)H)?(?:(?P<minutes>\d+)M)?(?:(?P<seconds>\d+)S)?)?$"
)


@lru_cache(maxsize=64)  # a handful of configured waves and grace periods, parsed per event otherwise
def parse_duration(text: str) -> relativedelta:
    match = _ISO.match(text.strip().upper())
    if not match or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"not an ISO-8601 duration: {text!r} (expected e.g. P3M, P30D, PT1H)")
    parts = {k: int(v) for k, v in match.groupdict().items() if v}
    return relativedelta(**parts)


def add_duration(moment: T, delta: relativedelta | timedelta | str) -> T:
    """Adds a duration; a datetime stays a datetime and a date stays a date."""
    if isinstance(delta, str):
        delta = parse_duration(delta)
    return moment + delta
