"""Which wrk settings drive the bare app at its full rate: the bare FastAPI + asyncpg app
(bench/bare_app.py) under wrk at several thread / connection settings, rotating the order every round,
printing each setting's rate, p50 and p99 and its rate relative to the first. The settings where the rate
stops rising with more threads or connections are where bench.registration's defaults belong
(`THREADS`, `CONNECTIONS`: its headroom check doubles both every round).

    python -m bench.headroom [--rounds 3] [--seconds 5] [--settings 2x32,2x64,4x64,4x128]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics

from bench.common import bench_settings, drop_databases, machine, new_namespace
from bench.people import regencies
from bench.registration import SETTLE_SECONDS, WARMUP_SECONDS
from bench.server import WrkRun, bare_app, wrk
from composition import infra
from pena.auth import issue_dev_token
from pena.db import ensure_database


async def run(settings_list: list[tuple[int, int]], rounds: int, seconds: float) -> None:
    settings = bench_settings(new_namespace())
    token = issue_dev_token(settings, role="admin", ttl_seconds=3600)
    codes = regencies()
    await ensure_database(settings.service_database_url("bare"))
    runs: dict[tuple[int, int], list[WrkRun]] = {s: [] for s in settings_list}
    first = 0
    try:
        with bare_app(settings) as (_, url):
            first += 10**9
            await wrk(url, threads=2, connections=32, seconds=WARMUP_SECONDS, first=first, token=token, regencies=codes)
            for i in range(rounds):
                order = settings_list[i % len(settings_list) :] + settings_list[: i % len(settings_list)]
                for threads, connections in order:
                    await asyncio.sleep(SETTLE_SECONDS)
                    first += 10**9
                    result = await wrk(
                        url,
                        threads=threads,
                        connections=connections,
                        seconds=seconds,
                        first=first,
                        token=token,
                        regencies=codes,
                    )
                    if result.failed:
                        raise RuntimeError(f"{result.failed} answers were not 201: {result.statuses}")
                    runs[(threads, connections)].append(result)
    finally:
        await drop_databases(settings, ["bare"])
    base = None
    for (threads, connections), results in runs.items():
        rate = sum(r.requests for r in results) / sum(r.seconds for r in results)
        base = base or rate
        print(
            f"  wrk {threads} t / {connections:>3} c: {rate:7,.0f} req/s ({rate / base:.2f} of the first), "
            f"p50 {statistics.median(r.p50_ms for r in results):6.1f} ms, "
            f"p99 {statistics.median(r.p99_ms for r in results):5.0f} ms; per round "
            + ", ".join(f"{r.rate:,.0f}" for r in results)
            + f"; wrk threads busy {statistics.median(r.generator_busy for r in results):.0%}",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--settings", default="2x32,2x64,4x64,4x128")
    args = parser.parse_args()
    pairs = [tuple(int(x) for x in s.split("x")) for s in args.settings.split(",")]
    infra.up()
    m = machine()
    print(f"machine: {m['nproc']} cpu ({m['cpu']}), {m['ram']} RAM, python {m['python']}, {m['date']}", flush=True)
    print(f"bare app under wrk: {args.rounds} rounds x {args.seconds:g}s per setting, rotating", flush=True)
    asyncio.run(run([(a, b) for a, b in pairs], args.rounds, args.seconds))


if __name__ == "__main__":
    main()
