"""kill -9 of one broker of a three-node KRaft cluster (`pena infra up --brokers 3`, here a private one
on free ports) while training.completed events flow into the real monev process (`pena serve monev`),
whose relay publishes monev.scheduled through the same cluster.

Topics are replicated 3 with min.insync.replicas=2 and no unclean leader election, and every client
writes with acks=all: a record acknowledged before the kill is on a second replica, which becomes the
leader. Pass criterion: one monev task per completion (nothing lost, nothing doubled), one inbox row
per task, one monev.scheduled event id per task, no unpublished outbox row once quiet; the killed
broker rejoins every partition's in-sync replicas after its restart."""

from __future__ import annotations

import asyncio
import random
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import KafkaError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from composition import infra
from pena.db import drop_database
from pena.kafka import connection_options, ensure_topics
from pena.settings import Settings
from tests.e2e.conftest import free_port
from tests.faults.figures import SCALE, Stopwatch, guard, report, scaled
from tests.faults.service_harness import ServiceProcesses, completion_event, eventually, new_ids, produce
from tests.faults.test_service_faults import assert_announced_once, assert_one_task_per_completion, wait_for_tasks

EVENTS = scaled(2000)
CHUNKS = 20
KILLS = min(SCALE, 3)  # scale 1: one broker killed and left down until the flow has drained


def distinct_free_ports(n: int) -> list[int]:
    ports: set[int] = set()
    while len(ports) < n:
        ports.add(free_port())
    return sorted(ports)


@pytest.fixture(scope="module")
def cluster() -> Iterator[infra.KafkaCluster]:
    ports = distinct_free_ports(6)
    cluster = infra.KafkaCluster(
        size=3,
        name=f"fault-kafka-cluster-{uuid.uuid4().hex[:8]}",  # a folder per run under PENA_HOME
        ports=tuple(ports[:3]),
        controller_ports=tuple(ports[3:]),
    )
    try:
        cluster.up()
        yield cluster
    finally:
        cluster.down(kill=True)
        shutil.rmtree(cluster.home, ignore_errors=True)


@pytest.fixture
def cluster_settings(fault_settings: Settings, cluster: infra.KafkaCluster) -> Settings:
    return fault_settings.model_copy(update={"kafka_bootstrap": cluster.bootstrap, "topic_replication_factor": 3})


@pytest.fixture
async def procs(cluster_settings: Settings, tmp_path: Path) -> AsyncIterator[ServiceProcesses]:
    await ensure_topics(cluster_settings, ["participants", "training", "monev", "graduation"])
    procs = ServiceProcesses(cluster_settings, tmp_path, PENA_TOPIC_REPLICATION_FACTOR="3")
    try:
        yield procs
    finally:
        await asyncio.to_thread(procs.stop_all)
        await drop_database(cluster_settings.service_database_url("monev"))


async def describe(settings: Settings, topics: list[str]) -> dict[str, list[dict[str, Any]]]:
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        return {t["topic"]: t["partitions"] for t in await admin.describe_topics(topics)}
    finally:
        await admin.close()


async def topic_configs(settings: Settings, topic: str) -> dict[str, str] | None:
    """The topic's effective configuration; None while the broker asked does not know the topic yet
    (a new topic reaches each broker's metadata a moment after its creation)."""
    admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=10000)
    await admin.start()
    try:
        [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
        [(error, _message, _type, _name, entries)] = response.resources
        return {entry[0]: entry[1] for entry in entries} if error == 0 else None
    finally:
        await admin.close()


class Progress:
    """Samples monev's stored task count every 0.25 s: when the flow stalled, and for how long."""

    def __init__(self, settings: Settings) -> None:
        self.engine = create_async_engine(settings.service_database_url("monev"), pool_size=1)
        self.samples: list[tuple[float, int]] = []

    async def count(self) -> int:
        async with self.engine.connect() as conn:
            return int((await conn.execute(text("SELECT count(*) FROM monev_tasks"))).scalar_one())

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.samples.append((time.monotonic(), await self.count()))
            await asyncio.sleep(0.25)

    def at(self, moment: float) -> int:
        return max((n for t, n in self.samples if t <= moment), default=0)

    def reached(self, count: int) -> float:
        return next(t for t, n in self.samples if n >= count)

    def longest_stall_after(self, moment: float, until: float) -> float:
        times = [t for t, n in self._changes() if moment <= t <= until]
        points = [moment, *times, until]
        return round(max(b - a for a, b in zip(points, points[1:], strict=False)), 1)

    def _changes(self) -> list[tuple[float, int]]:
        return [(t, n) for (t, n), (_, m) in zip(self.samples[1:], self.samples, strict=False) if n != m]


async def test_kill_9_one_broker_of_three_while_completions_flow(
    procs: ServiceProcesses, cluster: infra.KafkaCluster
) -> None:
    settings = procs.settings
    training, monev = settings.topic("training"), settings.topic("monev")
    for topic, partitions in (await describe(settings, [training, monev])).items():
        assert all(len(p["replicas"]) == 3 for p in partitions), (topic, partitions)
    configs = await eventually(lambda: topic_configs(settings, training), f"the configuration of {training}")
    assert configs["min.insync.replicas"] == "2", configs
    assert configs["unclean.leader.election.enable"] == "false", configs

    await asyncio.to_thread(procs.start, "monev")
    rng = random.Random(53)
    completed = datetime.now(UTC) - timedelta(days=10)
    participants = new_ids("b", EVENTS)
    pairs = {(p, "batch-b") for p in participants}
    size = len(participants) // CHUNKS
    kill_chunks = [CHUNKS * (k + 1) // (KILLS + 2) for k in range(KILLS)]  # scale 1: before chunk 6 of 20
    killed: list[int] = []
    kill_times: list[float] = []
    restarts: list[asyncio.Task[None]] = []
    send_failures = 0
    records_sent = 0

    async def kill_a_leader() -> None:
        """kill -9 of the broker leading training partition 0 (a leadership must move)."""
        partitions = (await describe(settings, [training]))[training]
        leader = next(int(p["leader"]) for p in partitions if p["partition"] == 0)
        node = next(n for n in cluster.nodes if n.node_id == leader)
        await asyncio.to_thread(node.down, True)
        killed.append(leader)
        kill_times.append(time.monotonic())

    async def all_in_sync() -> bool:
        found = await describe(settings, [training, monev, "__consumer_offsets"])
        return all(len(p["isr"]) == 3 for partitions in found.values() for p in partitions)

    async def restart_later(node_id: int) -> None:
        """Scale > 1: the victim returns 3 s later and catches up before the next one dies."""
        await asyncio.sleep(3.0)
        node = next(n for n in cluster.nodes if n.node_id == node_id)
        await asyncio.to_thread(node.up)
        await eventually(all_in_sync, "every partition back on three in-sync replicas", timeout=guard(90))

    progress = Progress(settings)
    stop_sampling = asyncio.Event()
    sampler = asyncio.create_task(progress.run(stop_sampling))
    flow = Stopwatch()
    try:
        for n in range(CHUNKS):
            kill: asyncio.Task[None] | None = None
            if n in kill_chunks:
                if restarts:
                    await restarts[-1]  # the previous victim is back before another broker dies
                kill = asyncio.create_task(kill_a_leader())  # while this chunk is being sent
            ids = participants[n * size : (n + 1) * size if n < CHUNKS - 1 else None]
            records = [(p, completion_event(p, "batch-b", completed).to_bytes()) for p in ids]
            while True:  # an unacknowledged chunk is sent again: the inbox makes the copies harmless
                try:
                    await produce(settings, training, records)
                    records_sent += len(records)
                    break
                except KafkaError:
                    send_failures += 1
                    records_sent += len(records)
                    await asyncio.sleep(0.5)
            if kill is not None:
                await kill
                if len(killed) < KILLS:
                    restarts.append(asyncio.create_task(restart_later(killed[-1])))
            await asyncio.sleep(rng.uniform(0.1, 0.4))
        fed_s = flow.seconds()
        async with httpx.AsyncClient(timeout=30) as http:
            tasks = await wait_for_tasks(http, procs, pairs, timeout=guard(150))
    finally:
        stop_sampling.set()
        await sampler
        await progress.engine.dispose()

    assert len(killed) == KILLS
    drained = progress.reached(EVENTS)
    drained_s = round(drained - flow.started, 1)
    assert progress.at(kill_times[0]) < EVENTS, "the broker died after the flow, not during it"
    assert_one_task_per_completion(tasks, pairs)
    await assert_announced_once(settings, tasks)

    engine = create_async_engine(settings.service_database_url("monev"))
    try:
        async with engine.connect() as conn:
            inbox = (
                await conn.execute(
                    text("SELECT count(*) AS n, count(DISTINCT event_id) AS ids FROM inbox WHERE event_type = :t"),
                    {"t": completion_event("x", "y", completed).type},
                )
            ).one()

        async def outbox_quiet() -> bool:
            async with engine.connect() as conn:
                pending = await conn.execute(text("SELECT count(*) FROM outbox WHERE published_at IS NULL"))
                return pending.scalar_one() == 0

        await eventually(outbox_quiet, "every outbox row published", timeout=guard(60))
    finally:
        await engine.dispose()
    assert inbox.n == inbox.ids == len(tasks) == EVENTS, inbox

    # the last victim comes back and catches up: every partition in sync on three replicas again
    back = Stopwatch()
    victim = next(n for n in cluster.nodes if n.node_id == killed[-1])
    await asyncio.to_thread(victim.up)
    started_s = back.seconds()

    await eventually(all_in_sync, "every partition back on three in-sync replicas", timeout=guard(90))
    offsets = (await describe(settings, ["__consumer_offsets"]))["__consumer_offsets"]
    assert all(len(p["replicas"]) == 3 for p in offsets)
    assert all(p.poll() is None for p in procs.procs.values()), "monev died with the broker"
    assert procs.kills == 0

    report(
        "kill -9 one broker of three while completions flow",
        completions=EVENTS,
        records_sent=records_sent,
        resent_chunks=send_failures,
        brokers_killed=killed,
        tasks_when_killed=[progress.at(t) for t in kill_times],
        # the time to recover: how long the stored count stood still after each kill (partitions led
        # by the other brokers may go on a moment, so the first progress alone would say little)
        longest_stall_after_each_kill_s=[
            progress.longest_stall_after(at, until)
            for at, until in zip(kill_times, [*kill_times[1:], drained], strict=True)
        ],
        fed_in_s=fed_s,
        drained_in_s=drained_s,
        completions_per_s=round(EVENTS / max(drained_s, 0.1)),
        broker_restarted_in_s=started_s,
        in_sync_again_after_restart_s=back.seconds(),
    )
