"""Shared helpers for the benchmarks: an isolated namespace per run (own databases, own topics, like
tests/conftest.py), timing, percentiles, the machine description and the printed result."""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import statistics
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from composition import infra
from pena.db import drop_database
from pena.settings import Settings


def new_namespace() -> str:
    return "b" + uuid.uuid4().hex[:10]


def bench_settings(ns: str, **overrides: Any) -> Settings:
    """Settings for one benchmark run: databases `<ns>_<service>` and topics `<ns>.<service>.events`."""
    pg = infra.PostgresInfra()
    values: dict[str, Any] = {
        "environment": "test",
        "database_url": f"postgresql+asyncpg://postgres@127.0.0.1:{pg.port}/{ns}_{{service}}",
        "kafka_bootstrap": infra.KafkaInfra().bootstrap,
        "topic_namespace": ns,
        "topic_partitions": 3,
        "log_json": True,
        "log_level": "WARNING",
    }
    values.update(overrides)
    return Settings(**values)


def asyncpg_dsn(settings: Settings, service: str) -> str:
    """The plain libpq form of a service's database URL (for asyncpg and bare baselines)."""
    return settings.service_database_url(service).replace("postgresql+asyncpg://", "postgresql://")


async def drop_databases(settings: Settings, services: list[str]) -> None:
    for name in services:
        await drop_database(settings.service_database_url(name))


async def delete_topics(settings: Settings) -> None:
    """Removes this run's topics (the namespace prefix makes them ours alone)."""
    from aiokafka.admin import AIOKafkaAdminClient

    from pena.kafka import connection_options

    admin = AIOKafkaAdminClient(**connection_options(settings))
    await admin.start()
    try:
        ours = [t for t in await admin.list_topics() if t.startswith(settings.topic_namespace + ".")]
        if ours:
            await admin.delete_topics(ours)
    finally:
        await admin.close()


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); 0.0 for an empty list."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


def median(values: list[float]) -> float:
    return statistics.median(values) if values else 0.0


class Timer:
    def __enter__(self) -> Timer:
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self.started


def machine() -> dict[str, str]:
    model = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    ram = "unknown"
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
            ram = f"{kib / 1024 / 1024:.1f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return {
        "nproc": str(os.cpu_count()),
        "cpu": model,
        "ram": ram,
        "python": platform.python_version(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


REPORTED = "none, reported only"  # a Result's target when the issue names no target for the figure


def _verdict(ratio: float, target: str | None, floor: float | None) -> str:
    """met / floor only / missed against ">= x" or "<= x"; "reported" when there is no target."""
    if target is None or target == REPORTED:
        return "reported"
    op, bound = target.split()[0], float(target.split()[1])

    def within(b: float) -> bool:
        return ratio >= b if op == ">=" else ratio <= b

    if within(bound):
        return "met"
    return "floor only" if floor is not None and within(floor) else "missed"


@dataclass
class Ratio:
    """A further ratio a benchmark reports beside its main one (e.g. the scheduler's backlog ratio),
    printed in its own row of `make bench`'s summary."""

    name: str
    ratio: float
    target: str | None  # ">= 0.7" / "<= 1.2"; None when the issue sets no target (reported only)
    what: str = ""  # what is divided by what
    floor: float | None = None

    @property
    def verdict(self) -> str:
        return _verdict(self.ratio, self.target, self.floor)

    @property
    def target_text(self) -> str:
        if self.target is None:
            return REPORTED
        return self.target if self.floor is None else f"{self.target} (floor {self.floor:g})"


@dataclass
class Result:
    """One benchmark's outcome. `ratio` compares PENA with the bare baseline measured in the same run;
    `target` says which way is good (">= 0.5" means ratio should be at least 0.5)."""

    name: str
    size: str
    figures: dict[str, str]
    ratio: float
    target: str  # ">= 0.5" / "<= 2", or REPORTED when the issue sets no target for the figure
    notes: list[str] = field(default_factory=list)
    floor: float | None = None  # the floor below the target (same direction), if it names one
    check: str = ""  # a measurement check's verdict (registration: the generator headroom)
    extra: list[Ratio] = field(default_factory=list)  # further ratios of the issue measured by this benchmark

    def _within(self, bound: float) -> bool:
        op = self.target.split()[0]
        return self.ratio >= bound if op == ">=" else self.ratio <= bound

    @property
    def met(self) -> bool:
        return self.target != REPORTED and self._within(float(self.target.split()[1]))

    @property
    def verdict(self) -> str:
        if self.target == REPORTED:
            return "reported"
        if self.met:
            return "met"
        return "floor only" if self.floor is not None and self._within(self.floor) else "missed"

    @property
    def target_text(self) -> str:
        return self.target if self.floor is None else f"{self.target} (floor {self.floor:g})"

    def render(self) -> str:
        lines = [f"== {self.name} ({self.size})"]
        width = max(len(k) for k in self.figures) if self.figures else 0
        lines += [f"  {k.ljust(width)}  {v}" for k, v in self.figures.items()]
        lines.append(f"  ratio {self.ratio:.2f} (target {self.target_text}): {self.verdict.upper()}")
        for extra in self.extra:
            what = f" = {extra.what}" if extra.what else ""
            lines.append(
                f"  {extra.name}{what}: {extra.ratio:.2f} (target {extra.target_text}): {extra.verdict.upper()}"
            )
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def main_for(run: Callable[[bool], Coroutine[Any, Any, Result]], description: str) -> None:
    """The `python -m bench.<name> [--full]` entry point of every benchmark."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--full", action="store_true", help="the sizes named in the issue (slow)")
    args = parser.parse_args()
    infra.up()  # idempotent: already running is fine
    m = machine()
    print(f"machine: {m['nproc']} cpu ({m['cpu']}), {m['ram']} RAM, python {m['python']}, {m['date']}", flush=True)
    result = asyncio.run(run(args.full))
    print(result.render(), flush=True)
