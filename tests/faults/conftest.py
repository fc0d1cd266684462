"""Fault tests get their own PostgreSQL and Kafka broker, so stopping and restarting them never
disturbs other tests running on the shared instances."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from composition import infra
from pena.settings import Settings
from tests.e2e.conftest import ROOT, free_port
from tests.faults.figures import RECORDED, SCALE, render


@dataclass
class PrivateInfra:
    pg: infra.PostgresInfra
    kafka: infra.KafkaInfra


@pytest.fixture(scope="session")
def private_infra() -> Iterator[PrivateInfra]:
    # a folder per test session: two sessions on one machine never share (or stop) each other's broker
    run = uuid.uuid4().hex[:8]
    pg = infra.PostgresInfra(port=free_port(), name=f"fault-postgres-{run}")
    kafka = infra.KafkaInfra(port=free_port(), controller_port=free_port(), name=f"fault-kafka-{run}")
    try:
        pg.up()
        kafka.up()
        yield PrivateInfra(pg, kafka)
    finally:
        kafka.down()
        pg.down()
        for folder in (kafka.home, pg.data_dir.parent):
            shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def fault_settings(private_infra: PrivateInfra) -> Settings:
    ns = "f" + uuid.uuid4().hex[:10]
    return Settings(
        environment="test",
        database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{private_infra.pg.port}/{ns}_{{service}}",
        kafka_bootstrap=private_infra.kafka.bootstrap,
        topic_namespace=ns,
        topic_partitions=3,
        db_pool_size=5,
        db_max_overflow=10,
        consumer_backoff_seconds=0.05,
        relay_idle_poll_seconds=0.5,
        db_timeout_seconds=2.0,
    )


def env_for(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PENA_")}
    env.update(
        {
            "PENA_ENVIRONMENT": "test",
            "PENA_DATABASE_URL": settings.database_url,
            "PENA_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
            "PENA_TOPIC_NAMESPACE": settings.topic_namespace,
            "PENA_TOPIC_PARTITIONS": str(settings.topic_partitions),
            "PENA_RELAY_BATCH_SIZE": "50",
            "PENA_RELAY_IDLE_POLL_SECONDS": "0.5",
            "PENA_CONSUMER_BACKOFF_SECONDS": "0.05",
            "PENA_LOG_LEVEL": "WARNING",
        }
    )
    env.update(extra)
    return env


class ProbeProcesses:
    """Starts, kills (-9) and restarts the probe publisher/consumer processes."""

    def __init__(self, settings: Settings, logdir: Path) -> None:
        self.settings = settings
        self.logdir = logdir
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.starts = 0

    def start(self, role: str, **env: str) -> subprocess.Popen[bytes]:
        self.starts += 1
        log = open(self.logdir / f"{role}-{self.starts}.log", "wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "tests.faults.proc", role],
            env=env_for(self.settings, **env),
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[role] = proc
        return proc

    def kill(self, role: str) -> None:
        proc = self.procs[role]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)

    def stop_all(self) -> None:
        for role in list(self.procs):
            self.kill(role)


@pytest.fixture
def processes(fault_settings: Settings, tmp_path: Path) -> Iterator[ProbeProcesses]:
    procs = ProbeProcesses(fault_settings, tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """What each fault test did and saw: events, kills, effects found, answers, time to drain."""
    if not RECORDED:
        return
    terminalreporter.section(f"fault figures (PENA_FAULT_SCALE={SCALE})")
    for figures in RECORDED:
        terminalreporter.write_line(f"{figures.test}: {render(figures.values)}")
