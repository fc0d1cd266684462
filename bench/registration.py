"""Sustained POST /v1/participants through uvicorn on loopback: the real participants service
(`pena serve participants` on Kafka: validation, NIK token, field encryption, duplicate checks,
history, audit, outbox event) against the bare FastAPI + asyncpg app (bench/bare_app.py, one INSERT
per request), both measured the same way by a closed loop of httpx clients (concurrency 32) running
in this process. Also the service process's resident memory, idle and after the load.

Issue target: at least 0.5 of the bare rate.   python -m bench.registration [--full]
"""

from __future__ import annotations

import asyncio
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
from bench.server import bare_app, closed_loop, participants_service, rss_mib
from pena.auth import issue_dev_token
from pena.db import ensure_database

CONCURRENCY = 32
WARMUP = 300


async def _measure(base_url: str, rows: list[dict[str, Any]], headers: dict[str, str]) -> tuple[float, list[float]]:
    """Warm up (connections, pools, JIT-less caches), then time the rest. Returns (req/s, latencies)."""
    _, _, failed = await closed_loop(base_url, "/v1/participants", rows[:WARMUP], headers=headers, concurrency=8)
    seconds, latencies, failed_main = await closed_loop(
        base_url, "/v1/participants", rows[WARMUP:], headers=headers, concurrency=CONCURRENCY
    )
    if failed or failed_main:
        raise RuntimeError(f"{failed + failed_main} requests did not answer 201")
    return len(latencies) / seconds, latencies


def _line(rate: float, latencies: list[float]) -> str:
    return f"{rate:,.0f} req/s, p50 {percentile(latencies, 50):.0f} ms, p99 {percentile(latencies, 99):.0f} ms"


async def run(full: bool) -> Result:
    count = 20_000 if full else 3_000
    settings = bench_settings(new_namespace())
    rows = participants(WARMUP + count)
    headers = {"Authorization": f"Bearer {issue_dev_token(settings, role='admin', ttl_seconds=4 * 3600)}"}
    await ensure_database(settings.service_database_url("bare"))
    try:
        with participants_service(settings) as (proc, url):
            await asyncio.sleep(2)  # let startup work (topics, region load) settle before reading memory
            idle = rss_mib(proc.pid)
            pena_rate, pena_lat = await _measure(url, rows, headers)
            loaded = rss_mib(proc.pid)
        with bare_app(settings) as (bare_proc, bare_url):
            bare_rate, bare_lat = await _measure(bare_url, rows, headers)
            bare_rss = rss_mib(bare_proc.pid)
    finally:
        await drop_databases(settings, ["participants", "bare"])
        await delete_topics(settings)
    return Result(
        name="registration",
        size=f"{count:,} POSTs after {WARMUP} warm-up, concurrency {CONCURRENCY}",
        figures={
            "bare FastAPI + asyncpg (baseline)": _line(bare_rate, bare_lat),
            "participants service": _line(pena_rate, pena_lat),
            "service RSS idle / after load": f"{idle:.0f} / {loaded:.0f} MiB (bare app loaded {bare_rss:.0f} MiB)",
            "rate ratio service/bare": f"{pena_rate / bare_rate:.2f}",
        },
        ratio=pena_rate / bare_rate,
        target=">= 0.5",
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
