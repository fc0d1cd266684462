"""Size and figures of the fault runs.

CI runs the short version (PENA_FAULT_SCALE=1); `make faults-long` runs the same tests with more
events, more kills and more fuzzing (PENA_FAULT_SCALE=5). Each test records what it did and saw with
`report()`; the figures are printed at the end of the pytest run (tests/faults/conftest.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

SCALE = max(1, int(os.environ.get("PENA_FAULT_SCALE", "1")))


def scaled(n: int) -> int:
    return n * SCALE


def guard(seconds: float) -> float:
    """A failure guard for waits: larger runs get proportionally longer before a wait gives up."""
    return seconds * SCALE


@dataclass
class Figures:
    test: str
    values: dict[str, object] = field(default_factory=dict)


RECORDED: list[Figures] = []


def report(test: str, **values: object) -> None:
    RECORDED.append(Figures(test, dict(values)))


class Stopwatch:
    """Seconds since it was made, for 'drained in ... s' figures."""

    def __init__(self) -> None:
        self.started = time.monotonic()

    def seconds(self) -> float:
        return round(time.monotonic() - self.started, 1)


def render(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())
