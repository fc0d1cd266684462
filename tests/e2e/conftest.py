"""End-to-end harness: the services as real processes (`pena serve <service>` on Kafka, or
`pena dev` in one process), each with its own fresh databases and topic namespace."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from composition import infra

SERVICES = ("participants", "training", "monev", "graduation")
ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Deployment:
    namespace: str
    env: dict[str, str]
    urls: dict[str, str]  # service -> base URL (all the same URL in single-process mode)
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)

    def url(self, service: str) -> str:
        return self.urls[service]

    def log_text(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in self.logs.values() if p.exists())


def _start(cmd: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    out = open(log, "wb")
    return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT, start_new_session=True)


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log.read_text(errors='replace')[-3000:]}")
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"{url} not ready in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")


def _stop(deployment: Deployment) -> None:
    for proc in deployment.processes.values():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in deployment.processes.values():
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _drop_databases(namespace: str) -> None:
    import asyncio

    from pena.db import drop_database

    async def drop() -> None:
        for service in SERVICES:
            await drop_database(
                f"postgresql+asyncpg://postgres@127.0.0.1:{infra.PostgresInfra().port}/{namespace}_{service}"
            )

    asyncio.run(drop())


def base_env(namespace: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENA_")}
    env.update(
        {
            "PENA_ENVIRONMENT": "test",
            "PENA_DATABASE_URL": f"postgresql+asyncpg://postgres@127.0.0.1:{infra.PostgresInfra().port}/"
            f"{namespace}_{{service}}",
            "PENA_KAFKA_BOOTSTRAP": infra.KafkaInfra().bootstrap,
            "PENA_TOPIC_NAMESPACE": namespace,
            "PENA_TOPIC_PARTITIONS": "3",
            "PENA_ALLOW_CLOCK_CONTROL": "true",
            "PENA_RELAY_IDLE_POLL_SECONDS": "1",
            "PENA_SCHEDULER_POLL_SECONDS": "0.5",
            "PENA_LOG_LEVEL": "INFO",
        }
    )
    return env


@pytest.fixture
def four_processes(infra_up: None, tmp_path: Path) -> Iterator[Deployment]:
    """The four services as four processes on real Kafka."""
    namespace = "e" + uuid.uuid4().hex[:10]
    env = base_env(namespace) | {"PENA_BUS": "kafka"}
    ports = {s: free_port() for s in SERVICES}
    deployment = Deployment(namespace, env, {s: f"http://127.0.0.1:{p}" for s, p in ports.items()})
    subprocess.run(
        [sys.executable, "-m", "composition.cli", "topics"], env=env, cwd=ROOT, check=True, capture_output=True
    )
    try:
        for service, port in ports.items():
            log = tmp_path / f"{service}.log"
            deployment.logs[service] = log
            deployment.processes[service] = _start(
                [sys.executable, "-m", "composition.cli", "serve", service, "--port", str(port)], env, log
            )
        for service in SERVICES:
            _wait_ready(deployment.urls[service], deployment.processes[service], deployment.logs[service])
        yield deployment
    finally:
        _stop(deployment)
        _drop_databases(namespace)


@pytest.fixture
def single_process(infra_up: None, tmp_path: Path) -> Iterator[Deployment]:
    """`pena dev`: the four services in one process with the in-process bus."""
    namespace = "d" + uuid.uuid4().hex[:10]
    env = base_env(namespace) | {"PENA_BUS": "inprocess"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    deployment = Deployment(namespace, env, dict.fromkeys(SERVICES, url))
    log = tmp_path / "dev.log"
    deployment.logs["dev"] = log
    try:
        deployment.processes["dev"] = _start(
            [sys.executable, "-m", "composition.cli", "dev", "--port", str(port)], env, log
        )
        _wait_ready(url, deployment.processes["dev"], log)
        yield deployment
    finally:
        _stop(deployment)
        _drop_databases(namespace)
