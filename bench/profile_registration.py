"""Where the registration time goes: py-spy (a sampling profiler, `pip install py-spy` in the virtualenv)
on `pena serve participants` while wrk sends the registration load (as bench.registration does).
Writes py-spy's raw (collapsed stacks) file and prints the inclusive share of the samples for the
frames named in docs/benchmarks.md ("Where the time goes"), plus the top self frames.

    python -m bench.profile_registration [--seconds 20] [--rate 200] [--native] [--split] [--out reg.txt]
                                         [--perf]

py-spy samples wall-clock stacks: a process that is runnable but waits for a core (the two cores are
shared with PostgreSQL and wrk) stays where it was, typically right after a socket write that woke
PostgreSQL or wrk, so such frames are overstated. --perf profiles the same load with Linux `perf`
instead (CPU time only, on-CPU samples): the share of the service's CPU in the kernel, in the Python
interpreter and in each extension module, plus the process's user/system CPU per request from /proc.

--split: the service as `--role api` + `--role workers` (as bench.registration runs it); the API
process is profiled.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
from pathlib import Path

from bench.common import bench_settings, delete_topics, drop_databases, new_namespace
from bench.people import regencies
from bench.registration import CONNECTIONS, THREADS, WARMUP_SECONDS
from bench.server import served, wrk
from pena.auth import issue_dev_token

# label -> substrings of a frame ("function (file:line)"); a sample counts once per label
FRAMES: dict[str, tuple[str, ...]] = {
    "route register_participant": ("register_participant (services/participants/api.py",),
    "register_new (use case)": ("register_new (services/participants/registration.py",),
    "register_in_one_statement (the one statement, asyncpg)": ("register_in_one_statement",),
    "participant_values (crypto, ids)": ("participant_values",),
    "registration_event (payload, envelope)": ("registration_event",),
    "creation_errors (validation)": ("creation_errors",),
    "nik_token + identity_hash (HMAC)": ("nik_token (pena/crypto", "identity_hash (services"),
    "answer: new_view + ParticipantRead + model_dump_json": ("new_view", "model_dump_json", "model_validate"),
    "SQLAlchemy (any frame)": ("sqlalchemy/",),
    "asyncpg (any frame)": ("asyncpg/",),
    "FastAPI solve_dependencies": ("solve_dependencies",),
    "FastAPI request body (json + validation)": ("_extract_form_body", "request_body_to_args", "body (starlette"),
    "policy / authenticated / rate limiter": ("authenticated (pena/auth", "RateLimiter.hit", "dependency (pena/access"),
    "RequestContextMiddleware": ("RequestContextMiddleware.__call__",),
    "Starlette Response.__call__ / send": ("Response.__call__", "send (uvicorn"),
    "outbox relay": ("OutboxRelay",),
    "Kafka (aiokafka)": ("aiokafka/",),
    "scheduler": ("Scheduler.",),
    "logging": ("logging/",),
}


def shares(raw: Path) -> tuple[int, dict[str, float], list[tuple[str, float]]]:
    total = 0
    counts: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not n.isdigit():
            continue
        samples = int(n)
        total += samples
        for label, needles in FRAMES.items():
            if any(needle in stack for needle in needles):
                counts[label] += samples
        own[stack.rsplit(";", 1)[-1]] += samples
    return (
        total,
        {label: 100 * counts[label] / total for label in FRAMES},
        [(frame, 100 * n / total) for frame, n in own.most_common(15)],
    )


def perf_shares(data: Path) -> list[tuple[str, float]]:
    """`perf report` by shared object (the kernel, the interpreter, each extension module)."""
    report = subprocess.run(
        ["perf", "report", "-i", str(data), "--sort", "dso", "--stdio", "--percent-limit", "0.5"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    found = []
    for line in report.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith("%") and not line.startswith("#"):
            found.append((" ".join(parts[1:]), float(parts[0].rstrip("%"))))
    return found


def user_system(pid: int) -> tuple[float, float]:
    """User and system CPU seconds of a process so far (/proc/<pid>/stat)."""
    import os

    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def run(seconds: float, rate: int, native: bool, out: Path, split: bool = False, perf: bool = False) -> None:
    py_spy = shutil.which("py-spy") or str(Path(__import__("sys").executable).parent / "py-spy")
    settings = bench_settings(new_namespace())
    token = issue_dev_token(settings, role="admin", ttl_seconds=3600)
    codes = regencies()
    try:
        with served(settings, "participants", split=split) as svc:
            proc, url = svc.api, svc.url
            await wrk(
                url,
                threads=THREADS,
                connections=CONNECTIONS,
                seconds=WARMUP_SECONDS,
                first=1,
                token=token,
                regencies=codes,
            )
            cmd = (
                ["perf", "record", "-F", str(rate), "-p", str(proc.pid), "-o", str(out), "--", "sleep", f"{seconds:g}"]
                if perf
                else [
                    py_spy,
                    "record",
                    "--pid",
                    str(proc.pid),
                    "-d",
                    f"{seconds:g}",
                    "-r",
                    str(rate),
                    "-f",
                    "raw",
                    "-o",
                    str(out),
                    "--nonblocking",
                ]
                + (["--native"] if native else [])
            )
            user0, system0 = user_system(proc.pid)
            spy = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            load = await wrk(
                url,
                threads=THREADS,
                connections=CONNECTIONS,
                seconds=seconds,
                first=10**9,
                token=token,
                regencies=codes,
            )
            _, err = await spy.communicate()
            user1, system1 = user_system(proc.pid)
            if spy.returncode != 0:
                raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-1000:]}")
    finally:
        await drop_databases(settings, ["participants"])
        await delete_topics(settings)
    if perf:
        print(
            f"service under wrk {THREADS} t / {CONNECTIONS} c: {load.rate:,.0f} req/s, p50 {load.p50_ms:.1f} ms; "
            f"its CPU per request: user {(user1 - user0) * 1000 / load.requests:.2f} ms, "
            f"system {(system1 - system0) * 1000 / load.requests:.2f} ms (perf data in {out})"
        )
        print("| shared object (perf, on-CPU samples) | share |\n|---|---|")
        for dso, share in perf_shares(out):
            print(f"| {dso} | {share:.1f} % |")
        return
    total, table, top = shares(out)
    print(
        f"service under wrk {THREADS} t / {CONNECTIONS} c: {load.rate:,.0f} req/s, p50 {load.p50_ms:.1f} ms, "
        f"p99 {load.p99_ms:.0f} ms; {total:,} samples in {out}"
    )
    print("| where | share (inclusive) |\n|---|---|")
    for label, share in table.items():
        print(f"| {label} | {share:.1f} % |")
    print("top self frames:")
    for frame, share in top:
        print(f"  {share:5.1f} %  {frame}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rate", type=int, default=200)
    parser.add_argument("--native", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("reg-profile.txt"))
    parser.add_argument("--split", action="store_true", help="API and workers processes; profile the API")
    parser.add_argument("--perf", action="store_true", help="Linux perf (CPU time) instead of py-spy")
    args = parser.parse_args()
    asyncio.run(run(args.seconds, args.rate, args.native, args.out, args.split, args.perf))


if __name__ == "__main__":
    main()
