"""A/B of the registration path: the participants service from two checkouts of the code (A, B), each
in its own namespace (own database, own topics), next to the bare FastAPI + asyncpg app, all three
driven by wrk as in bench.registration (same script, threads, connections), the order rotating every
round. Prints each side's rate, p50/p99, its ratio to the bare app per round, and B/A per round.

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
import statistics
from pathlib import Path

from bench.common import bench_settings, delete_topics, drop_databases, machine, new_namespace
from bench.people import regencies
from bench.registration import CONNECTIONS, SETTLE_SECONDS, THREADS, WARMUP_SECONDS
from bench.server import WrkRun, bare_app, cpu_of, served, wrk
from composition import infra
from pena.auth import issue_dev_token
from pena.db import ensure_database


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
                    cpu[side].append((cpu_of(procs[side]) - before) * 1000 / r.requests)
                    if side in api_cpu:
                        api_cpu[side].append((cpu_of(answering[side]) - before_api) * 1000 / r.requests)
    finally:
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
    for side, values in api_cpu.items():
        if split[side == "B"]:
            print(f"  {side:4s} of which the API process {statistics.median(values):.2f} ms (median)")
    print(f"  B/A CPU per request {statistics.median(cpu['B']) / statistics.median(cpu['A']):.2f} (medians)")
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
