"""HTTP servers in subprocesses for the benchmarks: the real PENA services (`pena serve <service>` on
Kafka) and the bare FastAPI + asyncpg app; wrk (the native load generator that measures them), a
closed-loop httpx client (memory's load, not a throughput figure) and a VmRSS reader."""

from __future__ import annotations

import asyncio
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.common import asyncpg_dsn
from pena.home import pena_home
from pena.settings import Settings


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mib(pid: int) -> float:
    """Resident set size from /proc (what the kernel counts against the process)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far (/proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# The limiter is per client (per Authorization header); every benchmark request carries one token, so
# the limit must exceed what one token sends in a minute (~3,000 req/s bare = 180,000/min) or the
# benchmark measures 429s. Printed by bench.registration.
RATE_LIMIT_PER_MINUTE = 100_000_000


def _service_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        PENA_ENVIRONMENT="test",
        PENA_DATABASE_URL=settings.database_url,
        PENA_KAFKA_BOOTSTRAP=settings.kafka_bootstrap,
        PENA_TOPIC_NAMESPACE=settings.topic_namespace,
        PENA_TOPIC_PARTITIONS=str(settings.topic_partitions),
        PENA_BUS="kafka",
        PENA_LOG_LEVEL="WARNING",
        PENA_RATE_LIMIT_PER_MINUTE=str(RATE_LIMIT_PER_MINUTE),
        # the bare app's asyncpg pool keeps up to 20 connections open; a SQLAlchemy pool of 10 + 10
        # overflow closes each overflow connection on return and reconnects (and re-prepares) later
        PENA_DB_POOL_SIZE="20",
        PENA_DB_MAX_OVERFLOW="0",
    )
    return env


@contextmanager
def _process(
    cmd: list[str], env: dict[str, str], port: int, ready_path: str, cwd: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log, cwd=cwd)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                log.seek(0)
                err = log.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"{cmd} exited with {proc.returncode}: {err}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}{ready_path}", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{cmd} not ready after 120s")
            time.sleep(0.5)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@contextmanager
def service(
    settings: Settings,
    name: str,
    *,
    source: Path | None = None,
    env: dict[str, str] | None = None,
    role: str = "all",
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """One PENA service as ops run it (`python -m composition.cli serve <name>` on Kafka: API, relay,
    consumers, scheduler in one process), yielded once `/readyz` answers 200. `source`: another
    checkout of the code to run instead of this one (one from before the CLI moved to composition/
    runs `pena.cli`); `env`: variables over the benchmark's own (bench.registration_ab compares two);
    `role`: `pena serve --role` (`api` or `workers`: one of the two processes of a split service,
    see `split_service`; `all`, the default, passes no --role, so older checkouts run too)."""
    port = free_port()
    module = "composition.cli"
    if source is not None and not (source / "composition" / "cli.py").exists():
        module = "pena.cli"
    cmd = [sys.executable, "-m", module, "serve", name, "--port", str(port)]
    if role != "all":
        cmd += ["--role", role]
    environ = _service_env(settings) | (env or {})
    if source is not None:  # ahead of the editable install of this checkout on sys.path
        environ["PYTHONPATH"] = str(source)
        environ.setdefault("PENA_HOME", str(pena_home()))  # this checkout's dev keys (tokens verify)
    with _process(cmd, environ, port, "/readyz", cwd=source) as proc:
        yield proc, f"http://127.0.0.1:{port}"


@dataclass
class Served:
    """A service under load: the process answering HTTP, and every process of the service (the API
    process alone, or the API and its workers process when split), whose CPU the benchmark counts."""

    api: subprocess.Popen[bytes]
    url: str
    processes: list[subprocess.Popen[bytes]]


@contextmanager
def served(
    settings: Settings,
    name: str,
    *,
    split: bool,
    source: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[Served]:
    """The service in one process (`pena serve <name>`, split=False), or split (`--role workers`
    started first: it migrates, creates the topics and runs the relay, consumers and scheduler; then
    `--role api`, the HTTP API alone: still one uvicorn worker answering requests)."""
    if not split:
        with service(settings, name, source=source, env=env) as (proc, url):
            yield Served(proc, url, [proc])
        return
    with (
        service(settings, name, source=source, env=env, role="workers") as (workers, _),
        service(settings, name, source=source, env=env, role="api") as (api, url),
    ):
        yield Served(api, url, [api, workers])


def cpu_of(processes: list[subprocess.Popen[bytes]]) -> float:
    return sum(cpu_seconds(p.pid) for p in processes)


@contextmanager
def bare_app(settings: Settings) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    port = free_port()
    env = dict(os.environ, BENCH_BARE_DSN=asyncpg_dsn(settings, "bare"))
    cmd = [
        sys.executable,
        "-m",
        "uvicorn",
        "bench.bare_app:app",
        "--port",
        str(port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    with _process(cmd, env, port, "/healthz") as proc:
        yield proc, f"http://127.0.0.1:{port}"


# uvicorn closes a keep-alive connection idle for 5 s (its timeout_keep_alive default); a client that
# sends on such a connection just as the server closes it reads a reset (httpx.ReadError). The client
# drops its own idle connections sooner, and retries a request whose connection failed once.
CLIENT_KEEPALIVE_SECONDS = 4.0
TRANSPORT_ERRORS = (httpx.ReadError, httpx.WriteError, httpx.RemoteProtocolError, httpx.ConnectError)


@dataclass
class LoopResult:
    seconds: float
    latencies_ms: list[float]
    failed: int
    retried: int  # requests sent again after their connection failed (each counted once in latencies)


async def closed_loop(
    base_url: str,
    path: str,
    bodies: list[dict[str, Any]],
    *,
    headers: dict[str, str],
    concurrency: int,
    ok: Callable[[int], bool] = lambda status: status == 201,
) -> LoopResult:
    """`concurrency` clients each send the next body as soon as their previous answer arrived.
    A request whose connection failed (reset, closed) is sent once more on a new connection; its
    answer then may also be 409 (the first attempt was stored before the connection failed: the
    record exists once). The first failure's answer is printed."""
    latencies: list[float] = []
    failed = retried = 0
    queue = iter(bodies)
    limits = httpx.Limits(
        max_connections=concurrency, max_keepalive_connections=concurrency, keepalive_expiry=CLIENT_KEEPALIVE_SECONDS
    )
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:

        async def send(body: dict[str, Any]) -> tuple[int, str, bool]:
            nonlocal retried
            try:
                response = await client.post(path, json=body)
                return response.status_code, response.text, False
            except TRANSPORT_ERRORS:
                retried += 1
                response = await client.post(path, json=body)
                return response.status_code, response.text, True

        async def worker() -> None:
            nonlocal failed
            for body in queue:  # the shared iterator hands each body to exactly one worker
                started = time.perf_counter()
                status, text, again = await send(body)
                latencies.append((time.perf_counter() - started) * 1000)
                if not (ok(status) or (again and status == 409)):
                    if not failed:
                        print(f"  first failure: {status} {text[:500]}", flush=True)
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return LoopResult(time.perf_counter() - started, latencies, failed, retried)


REPO = Path(__file__).resolve().parent.parent
WRK_SCRIPT = Path(__file__).resolve().parent / "registration.lua"


def ensure_wrk() -> str:
    """wrk's path; installs it with apt (deploy/local/ensure-tools.sh wrk) when missing."""
    found = shutil.which("wrk")
    if found is None:
        subprocess.run(["bash", str(REPO / "deploy" / "local" / "ensure-tools.sh"), "wrk"], check=True)
        found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed (apt-get install wrk)")
    return found


@dataclass
class WrkRun:
    """One wrk run: requests answered, seconds, latency percentiles (ms), answers by status."""

    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    cpu_seconds: float  # wrk's own CPU time (user + system) during the run
    threads: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def generator_busy(self) -> float:
        """wrk's CPU time over its threads' wall time: near 1.0 means its threads were saturated."""
        return self.cpu_seconds / (self.seconds * self.threads)

    @property
    def failed(self) -> int:
        return self.socket_errors + sum(n for code, n in self.statuses.items() if code != 201)


async def wrk(
    url: str, *, threads: int, connections: int, seconds: float, first: int, token: str, regencies: list[str]
) -> WrkRun:
    """`wrk -t threads -c connections -d seconds --latency -s bench/registration.lua`: every request a new
    valid registration numbered from `first` (distinct `first`s apart by more than 10^8 x threads
    never collide). wrk runs in its own process on the same cores as the servers."""
    cmd = [
        ensure_wrk(),
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{seconds:g}s",
        "--timeout",
        "10s",
        "--latency",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        str(first),
        ",".join(regencies),
        token,
    ]
    # wrk is the only child process that ends during the run: the children's rusage grows by its CPU
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = await asyncio.create_subprocess_exec(*cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await proc.communicate()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = out.decode(errors="replace")
    line = next((x for x in text.splitlines() if x.startswith("WRKJSON ")), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {text[-1500:]} {err.decode(errors='replace')[-1500:]}")
    data = json.loads(line.removeprefix("WRKJSON "))
    return WrkRun(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        statuses={int(k): v for k, v in data["statuses"].items()},
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        cpu_seconds=(after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
        threads=threads,
    )
