"""Sustained POST /v1/participants through uvicorn on loopback: the real participants service
(`pena serve participants` on Kafka: validation, NIK token, field encryption, duplicate checks,
history, audit, outbox event) against the bare FastAPI + asyncpg app (bench/bare_app.py, one INSERT
per request), both measured the same way by a closed loop of httpx clients (concurrency 32) running
in this process. Also the service process's resident memory, idle and after the load.

Both servers run side by side and are measured in alternating rounds (service first in odd rounds,
bare first in even ones): on a machine shared with other work, load that comes and goes then weighs
on both sides alike instead of on whichever happened to run during it. The rates are each side's
requests over its own measured time; per-round ratios are printed to show the spread.

Issue target: at least 0.5 of the bare rate.   python -m bench.registration [--full]
"""

from __future__ import annotations

import asyncio
import statistics
from typing import Any

from bench.common import (
    Result,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
    percentile,
)
from bench.people import participants
from bench.server import bare_app, closed_loop, rss_mib, service
from pena.auth import issue_dev_token
from pena.db import ensure_database

CONCURRENCY = 32
WARMUP = 300
ROUNDS = 5
SETTLE_SECONDS = 1.0  # between rounds: the service's relay publishes what the round left in the outbox


async def _round(base_url: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> tuple[float, list[float]]:
    """One measured closed loop. Returns (seconds, latencies)."""
    seconds, latencies, failed = await closed_loop(
        base_url, "/v1/participants", rows, headers=headers, concurrency=CONCURRENCY
    )
    if failed:
        raise RuntimeError(f"{failed} requests did not answer 201")
    return seconds, latencies


async def _warm_up(base_url: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> None:
    """Connections, pools, prepared statements and caches, before anything is timed."""
    _, _, failed = await closed_loop(base_url, "/v1/participants", rows, headers=headers, concurrency=8)
    if failed:
        raise RuntimeError(f"{failed} warm-up requests did not answer 201")


def _line(rate: float, latencies: list[float]) -> str:
    return f"{rate:,.0f} req/s, p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms"


async def run(full: bool) -> Result:
    count = 20_000 if full else 3_000
    per_round = count // ROUNDS
    settings = bench_settings(new_namespace())
    rows = participants(WARMUP + count)  # the same rows for both sides (each has its own database)
    headers = {"Authorization": f"Bearer {issue_dev_token(settings, role='admin', ttl_seconds=4 * 3600)}"}
    await ensure_database(settings.service_database_url("bare"))
    spent = {"service": 0.0, "bare": 0.0}
    latencies: dict[str, list[float]] = {"service": [], "bare": []}
    round_ratios: list[float] = []
    try:
        with service(settings, "participants") as (proc, url), bare_app(settings) as (bare_proc, bare_url):
            await asyncio.sleep(2)  # let startup work (topics, region load) settle before reading memory
            idle = rss_mib(proc.pid)
            urls = {"service": url, "bare": bare_url}
            await _warm_up(url, rows[:WARMUP], headers)
            await _warm_up(bare_url, rows[:WARMUP], headers)
            for i in range(ROUNDS):
                chunk = rows[WARMUP + i * per_round : WARMUP + (i + 1) * per_round]
                rates = {}
                for side in ("service", "bare") if i % 2 == 0 else ("bare", "service"):
                    await asyncio.sleep(SETTLE_SECONDS)
                    seconds, lat = await _round(urls[side], chunk, headers)
                    spent[side] += seconds
                    latencies[side] += lat
                    rates[side] = len(lat) / seconds
                round_ratios.append(rates["service"] / rates["bare"])
            loaded = rss_mib(proc.pid)
            bare_rss = rss_mib(bare_proc.pid)
    finally:
        await drop_databases(settings, ["participants", "bare"])
        await delete_topics(settings)
    pena_rate = len(latencies["service"]) / spent["service"]
    bare_rate = len(latencies["bare"]) / spent["bare"]
    return Result(
        name="registration",
        size=f"{ROUNDS} x {per_round:,} POSTs per side in alternating rounds after {WARMUP} warm-up, "
        f"concurrency {CONCURRENCY}",
        figures={
            "bare FastAPI + asyncpg (baseline)": _line(bare_rate, latencies["bare"]),
            "participants service": _line(pena_rate, latencies["service"]),
            "service RSS idle / after load": f"{idle:.0f} / {loaded:.0f} MiB (bare app loaded {bare_rss:.0f} MiB)",
            "ratio per round": ", ".join(f"{r:.2f}" for r in round_ratios)
            + f" (median {statistics.median(round_ratios):.2f})",
            "rate ratio service/bare": f"{pena_rate / bare_rate:.2f}",
        },
        ratio=pena_rate / bare_rate,
        target=">= 0.5",
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
