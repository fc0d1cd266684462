"""A/B of the registration path: the participants service from two checkouts of the code (A, B), each
in its own namespace (own database, own topics), next to the bare FastAPI + asyncpg app, all three
driven by wrk as in bench.registration (same script, threads, connections), the order rotating every
round. Prints each side's rate, p50/p99, its ratio to the bare app per round, B/A per round, and the
CPU per request of each side's server processes and of its PostgreSQL backends (every backend
connected to the side's database, read from /proc like the servers': PostgreSQL runs on the same
two cores, so its work per request counts against the rate too).

    python -m bench.registration_ab [B_TREE] [--a A_TREE] [--b-env K=V ...] [--a-split] [--b-split]
                                    [--rounds 4] [--seconds 5]

A and B default to this checkout; --b-env sets environment variables for B only (for example
PENA_LOG_LEVEL=INFO: the cost of the access log); --a-split / --b-split run that side as two processes
(`pena serve --role api` answering, `--role workers` beside it; the side's CPU then counts both).
A tree is a copy of the repository (e.g. `git worktree add` or `cp -r` of pena/ and services/ with a
patch applied); it runs with the same virtualenv.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from pathlib import Path

import asyncpg

from bench.common import asyncpg_dsn, bench_settings, delete_topics, drop_databases, machine, new_namespace
from bench.people import regencies
from bench.registration import CONNECTIONS, SETTLE_SECONDS, THREADS, WARMUP_SECONDS
from bench.server import WrkRun, bare_app, cpu_of, cpu_seconds, served, wrk
from composition import infra
from pena.auth import issue_dev_token
from pena.db import ensure_database


async def backends_cpu(admin: asyncpg.Connection, database: str) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend connected to `database` (same machine: /proc)."""
    found = {}
    for row in await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database):
        with contextlib.suppress(OSError):
            found[row["pid"]] = cpu_seconds(row["pid"])
    return found


def backends_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU the backends used between two readings (a backend that started between them: all of it)."""
    return sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items())


async def run(
    a: Path | None, b: Path | None, b_env: dict[str, str], rounds: int, seconds: float, split: tuple[bool, bool]
) -> None:
    sa, sb = bench_settings(new_namespace()), bench_settings(new_namespace())
    tokens = {side: issue_dev_token(s, role="admin", ttl_seconds=4 * 3600) for side, s in (("A", sa), ("B", sb))}
    tokens["bare"] = tokens["A"]  # the bare app reads no token
    codes = regencies()
    await ensure_database(sa.service_database_url("bare"))
    runs: dict[str, list[WrkRun]] = {"A": [], "B": [], "bare": []}
    cpu: dict[str, list[float]] = {"A": [], "B": [], "bare": []}  # server CPU ms per request, per round
    api_cpu: dict[str, list[float]] = {"A": [], "B": []}  # the answering process's alone
    db_cpu: dict[str, list[float]] = {"A": [], "B": [], "bare": []}  # PostgreSQL backends' ms per request
    databases = {
        "A": sa.service_database_url("participants").rsplit("/", 1)[1],
        "B": sb.service_database_url("participants").rsplit("/", 1)[1],
        "bare": sa.service_database_url("bare").rsplit("/", 1)[1],
    }
    admin = await asyncpg.connect(asyncpg_dsn(sa, "bare").rsplit("/", 1)[0] + "/postgres")
    first = 0
    try:
        with (
            served(sa, "participants", source=a, split=split[0]) as svc_a,
            served(sb, "participants", source=b, env=b_env, split=split[1]) as svc_b,
            bare_app(sa) as (proc_bare, url_bare),
        ):
            urls = {"A": svc_a.url, "B": svc_b.url, "bare": url_bare}
            procs = {"A": svc_a.processes, "B": svc_b.processes, "bare": [proc_bare]}
            answering = {"A": [svc_a.api], "B": [svc_b.api], "bare": [proc_bare]}
            sides = list(urls)
            for side in sides:
                first += 10**9
                await wrk(
                    urls[side],
                    threads=THREADS,
                    connections=CONNECTIONS,
                    seconds=WARMUP_SECONDS,
                    first=first,
                    token=tokens[side],
                    regencies=codes,
                )
            for i in range(rounds):
                for side in sides[i % 3 :] + sides[: i % 3]:
                    await asyncio.sleep(SETTLE_SECONDS)
                    first += 10**9
                    before, before_api = cpu_of(procs[side]), cpu_of(answering[side])
                    before_db = await backends_cpu(admin, databases[side])
                    r = await wrk(
                        urls[side],
                        threads=THREADS,
                        connections=CONNECTIONS,
                        seconds=seconds,
                        first=first,
                        token=tokens[side],
                        regencies=codes,
                    )
                    if r.failed:
                        raise RuntimeError(f"{side}: {r.failed} answers were not 201: {r.statuses}")
                    runs[side].append(r)
                    used_db = backends_delta(before_db, await backends_cpu(admin, databases[side]))
                    db_cpu[side].append(used_db * 1000 / r.requests)
                    cpu[side].append((cpu_of(procs[side]) - before) * 1000 / r.requests)
                    if side in api_cpu:
                        api_cpu[side].append((cpu_of(answering[side]) - before_api) * 1000 / r.requests)
    finally:
        await admin.close()
        await drop_databases(sa, ["participants", "bare"])
        await drop_databases(sb, ["participants"])
        await delete_topics(sa)
        await delete_topics(sb)
    for side, rs in runs.items():
        rate = sum(r.requests for r in rs) / sum(r.seconds for r in rs)
        print(
            f"  {side:4s} {rate:7,.0f} req/s, p50 {statistics.median(r.p50_ms for r in rs):6.1f} ms, "
            f"p99 {statistics.median(r.p99_ms for r in rs):5.0f} ms; per round "
            + ", ".join(f"{r.rate:,.0f}" for r in rs)
        )
    for side in ("A", "B"):
        ratios = [x.rate / y.rate for x, y in zip(runs[side], runs["bare"], strict=True)]
        print(
            f"  {side}/bare per round "
            + ", ".join(f"{r:.3f}" for r in ratios)
            + f" (median {statistics.median(ratios):.3f})"
        )
    for side, values in cpu.items():
        print(
            f"  {side:4s} server CPU per request "
            + ", ".join(f"{v:.2f}" for v in values)
            + f" ms (median {statistics.median(values):.2f})"
        )
    for side, values in db_cpu.items():
        print(
            f"  {side:4s} PostgreSQL CPU per request "
            + ", ".join(f"{v:.2f}" for v in values)
            + f" ms (median {statistics.median(values):.2f}; its backends)"
        )
    for side in cpu:
        total = [x + y for x, y in zip(cpu[side], db_cpu[side], strict=True)]
        print(f"  {side:4s} server + PostgreSQL CPU per request, median {statistics.median(total):.2f} ms")
    for side, values in api_cpu.items():
        if split[side == "B"]:
            print(f"  {side:4s} of which the API process {statistics.median(values):.2f} ms (median)")
    print(f"  B/A CPU per request {statistics.median(cpu['B']) / statistics.median(cpu['A']):.2f} (medians)")
    print(
        f"  B/A PostgreSQL CPU per request {statistics.median(db_cpu['B']) / statistics.median(db_cpu['A']):.2f}"
        " (medians)"
    )
    ba = [x.rate / y.rate for x, y in zip(runs["B"], runs["A"], strict=True)]
    print("  B/A per round    " + ", ".join(f"{r:.2f}" for r in ba) + f" (median {statistics.median(ba):.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("b", type=Path, nargs="?")
    parser.add_argument("--b-env", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--a", type=Path)
    parser.add_argument("--a-split", action="store_true", help="A as an api and a workers process")
    parser.add_argument("--b-split", action="store_true", help="B as an api and a workers process")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    infra.up()
    m = machine()
    print(f"machine: {m['nproc']} cpu ({m['cpu']}), {m['ram']} RAM, python {m['python']}, {m['date']}", flush=True)
    b_env = dict(item.split("=", 1) for item in args.b_env)
    print(
        f"registration A/B: A = {args.a or 'this checkout'}{' split' if args.a_split else ''}, "
        f"B = {args.b or 'this checkout'}{' split' if args.b_split else ''} {b_env or ''}; "
        f"wrk {THREADS} t / {CONNECTIONS} c, {args.rounds} rounds x {args.seconds:g}s per side, rotating",
        flush=True,
    )
    asyncio.run(run(args.a, args.b, b_env, args.rounds, args.seconds, (args.a_split, args.b_split)))


if __name__ == "__main__":
    main()
