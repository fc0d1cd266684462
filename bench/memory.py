"""Resident memory (VmRSS) of each PENA service, idle and under the registration load.

The four services run as ops run them, one process each (`python -m composition.cli serve <service>` on
Kafka: API, outbox relay, Kafka consumers and scheduler in one process), in a fresh namespace, next
to the bare FastAPI + asyncpg app (bench/bare_app.py). After a short settle their idle RSS is read;
then the registration load (bench/registration.py's closed loop, concurrency 32, bench/people.py rows)
goes to participants, whose relay publishes `participant.registered` to Kafka, where every service
that subscribes to it (training, monev and graduation today) consumes it as in production. Every
process's RSS is sampled every 0.1 s during the load and until those consumers have processed every
event (peak), and read again after a settle (after load). The bare app then gets the same load, sampled
the same way. Also printed: the RSS of a fresh interpreter that only imports what the process imports
(the service module with the kernel, FastAPI and uvicorn), to tell code from run-time data.

The issue names no memory target: the ratio (largest service peak / bare app peak) is reported only.
python -m bench.memory [--full]
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from contextlib import ExitStack
from typing import Any

import asyncpg

from bench.common import (
    REPORTED,
    Result,
    asyncpg_dsn,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
)
from bench.people import participants
from bench.server import bare_app, closed_loop, rss_mib, service
from composition.catalog import SERVICE_MODULES, load_definitions
from pena.auth import issue_dev_token
from pena.contracts import BY_NAME
from pena.db import ensure_database
from pena.settings import Settings

CONCURRENCY = 32
SETTLE_SECONDS = 5.0  # after startup: consumer groups join, topics are created, startup work is done
AFTER_SECONDS = 2.0  # after the load and the consumers' catching up, before the "after load" reading
SAMPLE_SECONDS = 0.1
DRAIN_TIMEOUT = 600.0
REGISTERED = BY_NAME["participant.registered"].type
BARE = "bare FastAPI + asyncpg (baseline)"

_RSS = "open('/proc/self/status').read().split('VmRSS:')[1].split()[0]"


def import_only_mib(imports: str) -> float:
    """VmRSS of a fresh interpreter that only runs `imports` (what the process loads before serving)."""
    code = f"{imports}\nprint({_RSS})"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024


def _service_imports(name: str) -> str:
    # what `pena serve <name>` imports before uvicorn starts serving (uvloop and httptools load with it)
    return (
        "import uvicorn, uvicorn.loops.uvloop, uvicorn.protocols.http.httptools_impl, composition.cli, pena.http.app, "
        f"pena.runtime\ncomposition.cli.load_definitions([{name!r}])"
    )


_BARE_IMPORTS = "import uvicorn, uvicorn.loops.uvloop, uvicorn.protocols.http.httptools_impl, bench.bare_app"


class PeakSampler:
    """Reads the VmRSS of some processes every SAMPLE_SECONDS and keeps each one's maximum."""

    def __init__(self, pids: dict[str, int]) -> None:
        self.pids = pids
        self.peak = {name: rss_mib(pid) for name, pid in pids.items()}
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        while True:
            for name, pid in self.pids.items():
                self.peak[name] = max(self.peak[name], rss_mib(pid))
            await asyncio.sleep(SAMPLE_SECONDS)

    def __enter__(self) -> PeakSampler:
        self._task = asyncio.create_task(self._run())
        return self

    def __exit__(self, *exc: object) -> None:
        if self._task is not None:
            self._task.cancel()
        for name, pid in self.pids.items():  # one last reading at the end of the phase
            self.peak[name] = max(self.peak[name], rss_mib(pid))


async def _count(settings: Settings, name: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(settings, name))
    try:
        return int(await conn.fetchval(sql, *args))
    finally:
        await conn.close()


async def _drained(settings: Settings, consumers: list[str], count: int) -> dict[str, int]:
    """Waits until participants' outbox is published and every consumer has `count` registrations in
    its inbox. Returns each consumer's count."""
    deadline = time.monotonic() + DRAIN_TIMEOUT
    while True:
        pending = await _count(settings, "participants", "SELECT count(*) FROM outbox WHERE published_at IS NULL")
        seen = {
            name: await _count(settings, name, "SELECT count(*) FROM inbox WHERE event_type = $1", REGISTERED)
            for name in consumers
        }
        if pending == 0 and all(n >= count for n in seen.values()):
            return seen
        if time.monotonic() > deadline:
            raise RuntimeError(f"not drained after {DRAIN_TIMEOUT:.0f}s: outbox pending {pending}, inboxes {seen}")
        await asyncio.sleep(0.5)


def _mib(value: float) -> str:
    return f"{value:.0f}"


async def run(full: bool) -> Result:
    count = 20_000 if full else 3_000
    names = list(SERVICE_MODULES)
    consumers = [d.name for d in load_definitions(names) if "participant.registered" in d.handlers]
    settings = bench_settings(new_namespace())
    rows = participants(count)  # the same rows for both sides (each has its own database)
    headers = {"Authorization": f"Bearer {issue_dev_token(settings, role='admin', ttl_seconds=4 * 3600)}"}
    imported = {name: import_only_mib(_service_imports(name)) for name in names}
    imported[BARE] = import_only_mib(_BARE_IMPORTS)
    await ensure_database(settings.service_database_url("bare"))
    try:
        with ExitStack() as stack:
            procs = {name: stack.enter_context(service(settings, name)) for name in names}
            procs[BARE] = stack.enter_context(bare_app(settings))
            pids = {name: proc.pid for name, (proc, _) in procs.items()}
            await asyncio.sleep(SETTLE_SECONDS)
            idle = {name: rss_mib(pid) for name, pid in pids.items()}

            with PeakSampler({n: p for n, p in pids.items() if n != BARE}) as service_peak:
                loop = await closed_loop(
                    procs["participants"][1], "/v1/participants", rows, headers=headers, concurrency=CONCURRENCY
                )
                if loop.failed:
                    raise RuntimeError(f"{loop.failed} registrations did not answer 201")
                seconds = loop.seconds
                drain_started = time.perf_counter()
                consumed = await _drained(settings, consumers, count)
                drain = time.perf_counter() - drain_started
            await asyncio.sleep(AFTER_SECONDS)
            after = {name: rss_mib(pid) for name, pid in pids.items() if name != BARE}

            with PeakSampler({BARE: pids[BARE]}) as bare_peak:
                bare_loop = await closed_loop(
                    procs[BARE][1], "/v1/participants", rows, headers=headers, concurrency=CONCURRENCY
                )
                if bare_loop.failed:
                    raise RuntimeError(f"{bare_loop.failed} bare registrations did not answer 201")
                bare_seconds = bare_loop.seconds
            await asyncio.sleep(AFTER_SECONDS)
            after[BARE] = rss_mib(pids[BARE])
            dead = {name: await _count(settings, name, "SELECT count(*) FROM dead_letters") for name in names}
    finally:
        await drop_databases(settings, [*names, "bare"])
        await delete_topics(settings)

    peak = service_peak.peak | bare_peak.peak
    figures = {"RSS in MiB": f"{'import':>6}  {'idle':>6}  {'peak':>6}  {'after':>6}"}
    for name in [*names, BARE]:
        figures[name] = "  ".join(f"{_mib(v):>6}" for v in (imported[name], idle[name], peak[name], after[name]))
    figures["four services together"] = "  ".join(
        f"{_mib(sum(column[n] for n in names)):>6}" for column in (imported, idle, peak, after)
    )
    figures["load"] = (
        f"participants {count:,} POSTs in {seconds:.1f}s ({count / seconds:,.0f} req/s); "
        f"bare {count:,} in {bare_seconds:.1f}s ({count / bare_seconds:,.0f} req/s); requests sent again after "
        f"their connection failed: {loop.retried} / {bare_loop.retried}"
    )
    figures["consumed participant.registered"] = (
        ", ".join(f"{name} {n:,}" for name, n in consumed.items())
        + f"; caught up {drain:.1f}s after the load; dead letters {sum(dead.values())}"
    )
    largest = max(names, key=lambda n: peak[n])
    figures["largest service peak / bare peak"] = f"{largest} {peak[largest]:.0f} / {peak[BARE]:.0f} MiB"
    return Result(
        name="memory",
        size=f"{count:,} registrations at concurrency {CONCURRENCY}, events consumed by {', '.join(consumers)}",
        figures=figures,
        ratio=peak[largest] / peak[BARE],
        target=REPORTED,
        notes=[
            "import = a fresh interpreter importing what the process imports; peak = max of samples every "
            f"{SAMPLE_SECONDS}s during the load and until the consumers caught up; after = {AFTER_SECONDS:.0f}s later"
        ],
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
