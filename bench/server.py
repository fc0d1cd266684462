"""HTTP servers in subprocesses for the benchmarks: the real PENA services (`pena serve <service>` on
Kafka) and the bare FastAPI + asyncpg app, plus a closed-loop load generator and a VmRSS reader."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from bench.common import asyncpg_dsn
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
        PENA_RATE_LIMIT_PER_MINUTE="100000000",  # the limiter would measure itself, not the service
        # the bare app's asyncpg pool keeps up to 20 connections open; a SQLAlchemy pool of 10 + 10
        # overflow closes each overflow connection on return and reconnects (and re-prepares) later
        PENA_DB_POOL_SIZE="20",
        PENA_DB_MAX_OVERFLOW="0",
    )
    return env


@contextmanager
def _process(cmd: list[str], env: dict[str, str], port: int, ready_path: str) -> Iterator[subprocess.Popen[bytes]]:
    # stderr to a file, not a pipe: nobody reads a pipe while the server runs, and a full one blocks it
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=log)
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
def service(settings: Settings, name: str) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """One PENA service as ops run it (`python -m composition.cli serve <name>` on Kafka: API, relay,
    consumers, scheduler in one process), yielded once `/readyz` answers 200."""
    port = free_port()
    cmd = [sys.executable, "-m", "composition.cli", "serve", name, "--port", str(port)]
    with _process(cmd, _service_env(settings), port, "/readyz") as proc:
        yield proc, f"http://127.0.0.1:{port}"


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


async def closed_loop(
    base_url: str,
    path: str,
    bodies: list[dict[str, Any]],
    *,
    headers: dict[str, str],
    concurrency: int,
    ok: Callable[[int], bool] = lambda status: status == 201,
) -> tuple[float, list[float], int]:
    """`concurrency` clients each send the next body as soon as their previous answer arrived.
    Returns (seconds, latencies in ms, failed requests); the first failure's answer is printed."""
    latencies: list[float] = []
    failed = 0
    queue = iter(bodies)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal failed
            for body in queue:  # the shared iterator hands each body to exactly one worker
                started = time.perf_counter()
                response = await client.post(path, json=body)
                latencies.append((time.perf_counter() - started) * 1000)
                if not ok(response.status_code):
                    if not failed:
                        print(f"  first failure: {response.status_code} {response.text[:500]}", flush=True)
                    failed += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - started, latencies, failed
