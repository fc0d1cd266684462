"""Real service processes (`pena serve <service>`) against the private fault infrastructure, plus
the client-side tools the service fault tests need: inject events onto a topic, read a topic back,
page through the monev and graduation APIs."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from pydantic import BaseModel

from pena.auth import issue_dev_token
from pena.contracts import TrainingCompleted, contract
from pena.envelope import CloudEvent
from pena.kafka import connection_options
from pena.outbox import outbox_row
from pena.settings import Settings
from tests import support
from tests.e2e.conftest import ROOT, free_port
from tests.faults.conftest import env_for

VILLAGE = "1371011001"


def admin_headers(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {issue_dev_token(settings, role='admin', sub='admin-1')}"}


class ServiceProcesses:
    """Starts `pena serve <service>` processes on fixed ports (a restart keeps the URL), kills them
    with SIGKILL, restarts them and waits for /readyz."""

    def __init__(self, settings: Settings, logdir: Path, **extra_env: str) -> None:
        self.settings = settings
        self.logdir = logdir
        self.env = env_for(
            settings,
            PENA_BUS="kafka",
            PENA_ALLOW_CLOCK_CONTROL="true",
            PENA_SCHEDULER_POLL_SECONDS="0.5",
            PENA_RATE_LIMIT_PER_MINUTE="100000",
            **extra_env,
        )
        self.ports: dict[str, int] = {}
        self.services: dict[str, str] = {}  # process name -> service it runs
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.logs: list[Path] = []
        self.kills = 0

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def start(self, service: str, *, wait: bool = True, instance: str | None = None) -> subprocess.Popen[bytes]:
        """instance: a name for a second replica of the same service (own port, same database and group)."""
        name = instance or service
        self.services[name] = service
        port = self.ports.setdefault(name, free_port())
        log = self.logdir / f"{name}-{len(self.logs)}.log"
        self.logs.append(log)
        proc = subprocess.Popen(
            [sys.executable, "-m", "composition.cli", "serve", service, "--port", str(port)],
            env=self.env,
            cwd=ROOT,
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[name] = proc
        if wait:
            self.wait_ready(name)
        return proc

    def stop(self, name: str) -> None:
        """A graceful stop (SIGTERM), as a rolling deployment does."""
        proc = self.procs[name]
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)

    def wait_ready(self, service: str, timeout: float = 90) -> None:
        proc, url, log = self.procs[service], self.url(service), self.logs[-1]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{service} exited with {proc.returncode}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise RuntimeError(f"{service} not ready in {timeout}s:\n{log.read_text(errors='replace')[-3000:]}")

    def kill9(self, service: str) -> None:
        proc = self.procs[service]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            self.kills += 1
        proc.wait(timeout=10)

    def restart(self, service: str) -> None:
        self.kill9(service)
        self.start(service)

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        return "\n".join(f"== {p.name}\n{p.read_text(errors='replace')[-chars:]}" for p in self.logs if p.exists())


# ------------------------------------------------------------------ events


def contract_event(name: str, payload: BaseModel, subject: str, at: datetime) -> CloudEvent:
    """The CloudEvent the owning service's relay would publish for this contract and payload (built by
    the kernel's own outbox code; the outbox row is not needed here)."""
    event, _ = outbox_row(name, payload, subject=subject, time=at)
    return event


def completion_event(participant_id: str, batch_id: str, completed_at: datetime) -> CloudEvent:
    payload = TrainingCompleted(
        participant_id=participant_id,
        batch_id=batch_id,
        centre_id="centre-fault",
        business_field="fashion_menjahit",
        region_code=VILLAGE,
        completed_at=completed_at,
        attendance_rate=1.0,
        sessions_attended=5,
        sessions_total=5,
    )
    return contract_event("training.completed", payload, participant_id, completed_at)


async def produce(settings: Settings, topic: str, records: Sequence[tuple[str | None, bytes]]) -> None:
    """Sends (key, value) records in order, each acknowledged by the broker."""
    producer = AIOKafkaProducer(**connection_options(settings), acks="all", enable_idempotence=True)
    await producer.start()
    try:
        futures = [await producer.send(topic, value=value, key=key.encode() if key else None) for key, value in records]
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def read_topic(settings: Settings, topic: str, timeout: float = 30) -> list[bytes]:
    """Every record now on the topic, from the beginning to the end offsets taken at the start."""
    consumer = AIOKafkaConsumer(
        **connection_options(settings),
        enable_auto_commit=False,
        group_id=None,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        # as pena.kafka.ensure_topics creates them: dead-letter topics have one partition
        partitions = range(1 if topic.endswith(".DLT") else settings.topic_partitions)
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[bytes] = []
        deadline = asyncio.get_running_loop().time() + timeout
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"could not read {topic} to its end")
            for records in (await consumer.getmany(timeout_ms=500)).values():
                out.extend(r.value or b"" for r in records)
        return out
    finally:
        await consumer.stop()


async def events_on(settings: Settings, service: str, name: str) -> list[dict[str, Any]]:
    wanted = contract(name).type
    found = []
    for raw in await read_topic(settings, settings.topic(service)):
        event = json.loads(raw)
        if event.get("type") == wanted:
            found.append(event)
    return found


# ------------------------------------------------------------------ HTTP


async def paged(http: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = {**params, "limit": 200} | ({"cursor": cursor} if cursor else {})
        r = await http.get(url, headers=headers, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        items.extend(body["items"])
        cursor = body.get("next_cursor")
        if not cursor:
            return items


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 90) -> Any:
    """Polls until probe() is truthy; the timeout is only a failure guard. A service that is still starting
    or restarting answers with connection errors: those count as "not yet"."""
    return await support.eventually(probe, what, timeout=timeout, interval=0.5, tolerate=(httpx.HTTPError,))


def new_ids(prefix: str, n: int) -> list[str]:
    tag = uuid.uuid4().hex[:6]
    return [f"{prefix}-{tag}-{i:05d}" for i in range(n)]


def survey_body(visit_date: str, income: int, correction: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "visit_date": visit_date,
        "respondent": "participant",
        "business_status": "active",
        "business_field": "fashion_menjahit",
        "monthly_revenue": 6_000_000,
        "monthly_household_income": income,
        "household_size": 4,
        "workers_employed": 1,
        "business_assets": 8_000_000,
        "savings": 1_000_000,
        "assistance_still_received": [],
        "welfare_self_assessment": 4,
        "voluntary_exit_statement": True,
    }
    if correction:
        body["correction_reason"] = correction
    return body
