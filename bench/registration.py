"""Sustained POST /v1/participants through uvicorn on loopback, load from wrk (a native load
generator, bench/registration.lua: every request a new valid registration): the real participants
service (`pena serve participants` on Kafka: validation, NIK token, field encryption, duplicate
checks, history, audit, outbox event, its relay publishing in the same process) against the bare
FastAPI + asyncpg app (bench/bare_app.py, one INSERT per request). One uvicorn worker each (uvicorn's
defaults: uvloop and httptools when installed, as they are here), the same PostgreSQL, pool of 20 on
both sides. Also the service process's resident memory, idle and after the load.

Both servers run side by side and are measured in alternating rounds (the order rotates every
round): on a machine shared with other work, load that comes and goes then weighs on all sides alike.
Each round also drives the bare app with twice the generator (2x threads, 2x connections): if the
bare rate rises with it, the generator, not the server, was the limit at the normal setting, and the
verdict says so, and the ratio reported is against the higher of the two bare figures (a generator
that held the bare app back never flatters the ratio). The rate limiter is set explicitly
(bench.server.RATE_LIMIT_PER_MINUTE) and any answer other than 201 fails the run.

Issue target: at least 0.5 of the bare rate (floor 0.3).   python -m bench.registration [--full]
"""

from __future__ import annotations

import asyncio
import os
import statistics

from bench.common import (
    Result,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
)
from bench.people import regencies
from bench.server import RATE_LIMIT_PER_MINUTE, WrkRun, bare_app, cpu_of, cpu_seconds, rss_mib, served, wrk
from pena.auth import issue_dev_token
from pena.db import ensure_database

# wrk's defaults: one thread per core (2 here), 32 connections (more than the pools' 20, so the servers
# never wait for a request); the headroom side doubles both. BENCH_WRK_THREADS / BENCH_WRK_CONNECTIONS
# override them (bench.headroom sweeps settings on the bare app to choose them).
THREADS = int(os.environ.get("BENCH_WRK_THREADS", "2"))
CONNECTIONS = int(os.environ.get("BENCH_WRK_CONNECTIONS", "32"))
WARMUP_SECONDS = 3.0
SETTLE_SECONDS = 1.0  # between runs: the service's relay publishes what the run left in the outbox
HEADROOM_NOISE = 0.10  # the bare rate may move this much (median per-round ratio) and still "hold"
SIDES = ("service", "bare", "bare 2x")
# `pena serve participants` as it starts by default: API, relay, consumers and scheduler in one process.
# BENCH_SERVE_SPLIT=1 runs it as `--role api` (the one uvicorn worker answering, as the bare app's one)
# beside `--role workers`; on these two shared cores that measured slower (docs/benchmarks.md, perfreg)
SPLIT = os.environ.get("BENCH_SERVE_SPLIT", "0") == "1"
SERVICE_SHAPE = (
    "participants API process (--role api) + workers process (--role workers)"
    if SPLIT
    else "participants service in one process (API, relay, consumers, scheduler)"
)


def _line(runs: list[WrkRun]) -> str:
    requests = sum(r.requests for r in runs)
    rate = requests / sum(r.seconds for r in runs)
    p50 = statistics.median(r.p50_ms for r in runs)
    p99 = statistics.median(r.p99_ms for r in runs)
    rates = ", ".join(f"{r.rate:,.0f}" for r in runs)
    return (
        f"{rate:,.0f} req/s ({requests:,} requests), p50 {p50:.1f} ms, p99 {p99:.0f} ms "
        f"(median of rounds; p99 {min(r.p99_ms for r in runs):.0f}-{max(r.p99_ms for r in runs):.0f}); "
        f"per round {rates}"
    )


def headroom_verdict(ratios: list[float]) -> tuple[str, str]:
    """(short verdict, sentence) from the per-round ratios bare at 2x generator / bare at 1x."""
    mid = statistics.median(ratios)
    if mid > 1 + HEADROOM_NOISE:
        return "GENERATOR-BOUND", (
            f"the bare rate rose {mid - 1:+.0%} with twice the generator: at {THREADS} threads / "
            f"{CONNECTIONS} connections the load, not the bare server, was the limit, so the bare figure is "
            "understated and the ratio overstated (see the ratio against the bare app at 2x; if wrk's threads "
            "are far from busy, its concurrency rather than its CPU was short: on a crowded machine more "
            "requests in flight hide the wait for a CPU)"
        )
    if mid < 1 - HEADROOM_NOISE:
        return "holds (bare fell)", (
            f"the bare rate fell {mid - 1:+.0%} with twice the generator instead of rising: more generator did "
            "not give more, so wrk was not the limit (the 2x run queues 64 connections on a pool of 20 and its "
            "4 threads take CPU from the servers on 2 cores); see wrk's own CPU share"
        )
    return "holds", f"the bare rate moved {mid - 1:+.0%} with twice the generator, within +-{HEADROOM_NOISE:.0%}"


async def run(full: bool) -> Result:
    rounds = 6 if full else 4
    seconds = 15.0 if full else 5.0
    settings = bench_settings(new_namespace())
    token = issue_dev_token(settings, role="admin", ttl_seconds=4 * 3600)
    codes = regencies()
    await ensure_database(settings.service_database_url("bare"))
    runs: dict[str, list[WrkRun]] = {side: [] for side in SIDES}
    cpu_ms: dict[str, list[float]] = {side: [] for side in SIDES}  # server process CPU per request
    all_cpu_ms: list[float] = []  # the service's processes together (the API's and the workers')
    round_ratios: list[float] = []
    headroom: list[float] = []
    first = 0  # each wrk run numbers its registrations from its own block (no NIK repeats on a side)

    async def drive(url: str, factor: int, duration: float) -> WrkRun:
        nonlocal first
        first += 10**9
        result = await wrk(
            url,
            threads=THREADS * factor,
            connections=CONNECTIONS * factor,
            seconds=duration,
            first=first,
            token=token,
            regencies=codes,
        )
        if result.failed:
            raise RuntimeError(
                f"{result.failed} answers were not 201: {result.statuses}, {result.socket_errors} socket errors"
            )
        return result

    try:
        with served(settings, "participants", split=SPLIT) as svc, bare_app(settings) as (bare_proc, bare_url):
            proc, url = svc.api, svc.url
            await asyncio.sleep(2)  # let startup work (topics, region load) settle before reading memory
            idle = rss_mib(proc.pid)
            targets = {"service": (url, 1), "bare": (bare_url, 1), "bare 2x": (bare_url, 2)}
            pids = {"service": proc.pid, "bare": bare_proc.pid, "bare 2x": bare_proc.pid}
            for side in ("service", "bare"):  # connections, pools, prepared statements, caches
                await drive(targets[side][0], 1, WARMUP_SECONDS)
            for i in range(rounds):
                order = SIDES[i % 3 :] + SIDES[: i % 3]
                rates = {}
                for side in order:
                    await asyncio.sleep(SETTLE_SECONDS)
                    before = cpu_seconds(pids[side])
                    before_all = cpu_of(svc.processes)
                    result = await drive(*targets[side], seconds)
                    cpu_ms[side].append((cpu_seconds(pids[side]) - before) * 1000 / result.requests)
                    if side == "service":  # the workers' share: the relay publishing what the run wrote
                        all_cpu_ms.append((cpu_of(svc.processes) - before_all) * 1000 / result.requests)
                    runs[side].append(result)
                    rates[side] = result.rate
                round_ratios.append(rates["service"] / rates["bare"])
                headroom.append(rates["bare 2x"] / rates["bare"])
            loaded = rss_mib(proc.pid)
            bare_rss = rss_mib(bare_proc.pid)
    finally:
        await drop_databases(settings, ["participants", "bare"])
        await delete_topics(settings)

    def rate(side: str) -> float:
        return sum(r.requests for r in runs[side]) / sum(r.seconds for r in runs[side])

    # the ratio is against the higher of the two bare figures: when twice the generator drew more from the
    # bare app, the normal setting understated it, and the ratio must not gain from that
    best_bare = max(rate("bare"), rate("bare 2x"))
    ratio = rate("service") / best_bare
    short, sentence = headroom_verdict(headroom)
    return Result(
        name="registration",
        size=f"wrk, {rounds} rounds x {seconds:g}s per side, alternating, after {WARMUP_SECONDS:g}s warm-up; "
        f"{THREADS} threads / {CONNECTIONS} connections (2x side: {2 * THREADS} / {2 * CONNECTIONS}); "
        "1 uvicorn worker each" + (" (the service's background loops in a second process)" if SPLIT else ""),
        figures={
            "bare FastAPI + asyncpg (baseline)": _line(runs["bare"]),
            f"bare, generator 2x ({2 * THREADS} t / {2 * CONNECTIONS} c)": _line(runs["bare 2x"]),
            SERVICE_SHAPE: _line(runs["service"]),
            "server process CPU per request": f"service {statistics.median(cpu_ms['service']):.2f} ms"
            + (f" (with its workers process {statistics.median(all_cpu_ms):.2f} ms)" if SPLIT else "")
            + f", bare {statistics.median(cpu_ms['bare']):.2f} ms (median of rounds; PostgreSQL's and wrk's "
            "not counted" + ("; the workers' CPU during the run: the relay may finish after it)" if SPLIT else ")"),
            "service RSS idle / after load": f"{idle:.0f} / {loaded:.0f} MiB (bare app loaded {bare_rss:.0f} MiB)",
            "rate limiter": f"PENA_RATE_LIMIT_PER_MINUTE={RATE_LIMIT_PER_MINUTE:,} per client (one token here); "
            "answers other than 201: 0",
            "ratio per round": ", ".join(f"{r:.2f}" for r in round_ratios)
            + f" (median {statistics.median(round_ratios):.2f})",
            "wrk's own CPU on the bare app": "; ".join(
                f"{label} {statistics.median(r.cpu_seconds * 1e6 / r.requests for r in runs[side]):.0f} us "
                f"per request, threads busy {statistics.median(r.generator_busy for r in runs[side]):.0%}"
                for label, side in ((f"{THREADS} t", "bare"), (f"{2 * THREADS} t", "bare 2x"))
            )
            + " (median of rounds; busy = CPU time / threads' wall time)",
            "generator headroom, bare 2x / 1x": ", ".join(f"{r:.2f}" for r in headroom)
            + f" (median {statistics.median(headroom):.2f}): {short}",
            "rate ratio service/bare": f"{rate('service') / rate('bare'):.2f} against the bare app at "
            f"{THREADS} t / {CONNECTIONS} c, {rate('service') / rate('bare 2x'):.2f} against it at 2x; "
            f"reported: {ratio:.2f} (against the higher bare rate)",
        },
        ratio=ratio,
        target=">= 0.5",
        floor=0.3,
        check=short,
        notes=[sentence],
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
