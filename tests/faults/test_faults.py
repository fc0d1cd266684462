"""Crashes and outages on real processes, a real broker and a real PostgreSQL (their own instances).

Pass criterion for each: after recovery every acknowledged effect exists exactly once, and the API
answered with clear errors (never a raw 500 or a hang) while a dependency was away."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from pena.clock import SystemClock
from pena.db import drop_database
from pena.http.app import create_app
from pena.kafka import ensure_topics
from pena.outbox import pending_count
from pena.runtime import Runtime
from pena.settings import Settings
from tests.faults.conftest import PrivateInfra, ProbeProcesses
from tests.faults.figures import Stopwatch, guard, report, scaled
from tests.kernel import probe
from tests.support import eventually


@pytest.fixture
async def observer(fault_settings: Settings) -> AsyncIterator[Runtime]:
    """A runtime without workers: creates the databases and lets the test write and inspect rows."""
    await ensure_topics(fault_settings, ["training", "probe"])
    runtime = Runtime(
        fault_settings, [probe.publisher, probe.consumer], clock=SystemClock(), bus="kafka", workers=False
    )
    await runtime.start()
    yield runtime
    await runtime.stop()
    for name in ("training", "probe"):
        await drop_database(fault_settings.service_database_url(name))


async def seqs_applied(runtime: Runtime) -> list[int]:
    async with runtime.service("probe").db.transaction() as s:
        return list((await s.execute(select(probe.effects.c.seq))).scalars().all())


async def wait_all_applied(runtime: Runtime, expected: set[int], timeout: float = 90) -> list[int]:
    async def done() -> bool:
        try:
            return set(await seqs_applied(runtime)) >= expected
        except Exception:
            return False

    await eventually(done, timeout=timeout, what=f"{len(expected)} effects")
    await asyncio.sleep(1.0)  # a doubled effect would show up now
    return await seqs_applied(runtime)


async def write_things(runtime: Runtime, seqs: range) -> None:
    async with runtime.service("training").db.transaction() as s:
        for i in seqs:
            await probe.create_thing(s, f"family-{i % 17}", i)


async def test_kill_relay_after_publish_and_consumer_before_offset_commit(observer, processes: ProbeProcesses) -> None:
    """F1 + F2 + F3: both processes die at their worst moment; after restart every effect is single."""
    n = scaled(300)
    await write_things(observer, range(n))
    relay = processes.start("publisher", PENA_FAILPOINTS="relay.after_publish")
    consumer = processes.start("consumer", PENA_FAILPOINTS="consumer.before_offset_commit")
    assert await asyncio.to_thread(relay.wait, 60) == 137  # published a batch, died before marking it
    assert await asyncio.to_thread(consumer.wait, 60) == 137  # committed effects, died before the offset
    async with observer.service("training").db.transaction() as s:
        pending_after_crash = await pending_count(s)
    assert pending_after_crash > 0
    restarted = Stopwatch()
    processes.start("publisher")
    processes.start("consumer")
    applied = await wait_all_applied(observer, set(range(n)), timeout=guard(90))
    assert sorted(applied) == list(range(n))
    async with observer.service("training").db.transaction() as s:
        assert await pending_count(s) == 0
    report(
        "kill -9 relay after publish + consumer before offset commit",
        events=n,
        outbox_rows_pending_after_crash=pending_after_crash,
        effects=len(applied),
        doubled=len(applied) - len(set(applied)),
        drained_after_restart_s=restarted.seconds(),
    )


async def test_kill_consumer_in_the_middle_of_its_transaction(observer, processes: ProbeProcesses) -> None:
    """F4: effects written but not committed are rolled back and redelivered once."""
    n = scaled(100)
    await write_things(observer, range(n))
    processes.start("publisher")
    consumer = processes.start("consumer", PENA_FAILPOINTS="consumer.in_transaction")
    assert await asyncio.to_thread(consumer.wait, 60) == 137
    assert await seqs_applied(observer) == []  # the open transaction died with the process
    restarted = Stopwatch()
    processes.start("consumer")
    applied = await wait_all_applied(observer, set(range(n)), timeout=guard(90))
    assert sorted(applied) == list(range(n))
    report(
        "kill -9 consumer inside its transaction",
        events=n,
        effects=len(applied),
        doubled=len(applied) - len(set(applied)),
        drained_after_restart_s=restarted.seconds(),
    )


async def test_random_kill_9_while_events_flow(observer, processes: ProbeProcesses) -> None:
    """kill -9 of relay and consumer at random moments while a few thousand events flow."""
    rng = random.Random(7)
    processes.start("publisher")
    processes.start("consumer")
    written = 0
    kills: Counter[str] = Counter()
    for n in range(scaled(4)):
        await write_things(observer, range(written, written + 500))
        written += 500
        await asyncio.sleep(rng.uniform(0.2, 1.5))
        victim = ("publisher", "consumer")[n % 2]  # both roles die, at random moments
        processes.kill(victim)
        kills[victim] += 1
        processes.start(victim)
    last_restart = Stopwatch()
    applied = await wait_all_applied(observer, set(range(written)), timeout=guard(120))
    assert sorted(applied) == list(range(written))
    report(
        "random kill -9 of relay and consumer",
        events=written,
        relay_kills=kills["publisher"],
        consumer_kills=kills["consumer"],
        effects=len(applied),
        doubled=len(applied) - len(set(applied)),
        drained_after_last_restart_s=last_restart.seconds(),
    )


async def test_broker_down_writes_keep_answering_and_backlog_drains(
    fault_settings, private_infra: PrivateInfra, auth
) -> None:
    """F5 + F6: API writes answer 201 while Kafka is stopped; after it returns, everything is delivered
    once, without restarting the service."""
    await ensure_topics(fault_settings, ["training", "probe"])
    runtime = Runtime(fault_settings, [probe.publisher, probe.consumer], clock=SystemClock(), bus="kafka", workers=True)
    await runtime.start()
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(runtime)), base_url="http://t")
    headers = auth("admin")
    try:
        for i in range(20):
            assert (
                await client.post("/v1/probe/things", json={"participant_id": f"p{i}", "seq": i}, headers=headers)
            ).status_code == 201
        await wait_all_applied(runtime, set(range(20)))
        n = 20 + scaled(200)
        await asyncio.to_thread(private_infra.kafka.down)
        down = Stopwatch()
        answers = [
            await client.post("/v1/probe/things", json={"participant_id": f"p{i % 5}", "seq": i}, headers=headers)
            for i in range(20, n)
        ]
        statuses = Counter(r.status_code for r in answers)
        assert set(statuses) == {201}, statuses
        await asyncio.sleep(3)  # the relay fails and retries meanwhile
        await asyncio.to_thread(private_infra.kafka.up)
        broker_down_s = down.seconds()
        back = Stopwatch()
        applied = await wait_all_applied(runtime, set(range(n)), timeout=guard(120))
        assert sorted(applied) == list(range(n))
        report(
            "Kafka stopped while the API takes writes",
            writes_while_down=len(answers),
            answers=dict(statuses),
            broker_down_s=broker_down_s,
            effects=len(applied),
            doubled=len(applied) - len(set(applied)),
            delivered_after_return_s=back.seconds(),
        )
    finally:
        await client.aclose()
        await runtime.stop()
        for name in ("training", "probe"):
            await drop_database(fault_settings.service_database_url(name))


async def test_postgres_restart_gives_503_never_500_and_loses_nothing(
    fault_settings, private_infra: PrivateInfra, auth
) -> None:
    """F7: during a PostgreSQL restart the API answers 201 or 503 problem+json; the pool recovers;
    every acknowledged write has exactly one effect."""
    runtime = Runtime(
        fault_settings, [probe.publisher, probe.consumer], clock=SystemClock(), bus="inprocess", workers=True
    )
    await runtime.start()
    client = httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(runtime), raise_app_exceptions=False),
        base_url="http://t",
        timeout=30,
    )
    headers = auth("admin")
    statuses: dict[int, int] = {}
    acknowledged: set[int] = set()

    async def writer() -> None:
        for i in range(scaled(400)):
            r = await client.post("/v1/probe/things", json={"participant_id": f"p{i % 9}", "seq": i}, headers=headers)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 201:
                acknowledged.add(i)
            else:
                assert r.headers["content-type"].startswith("application/problem+json")
            await asyncio.sleep(0.01)

    try:
        task = asyncio.create_task(writer())
        await asyncio.sleep(0.5)
        await asyncio.to_thread(private_infra.pg.restart)
        await asyncio.wait_for(task, timeout=guard(120))
        assert set(statuses) <= {201, 503}, statuses
        assert statuses.get(201, 0) > 0
        after = await client.post("/v1/probe/things", json={"participant_id": "after", "seq": 10_000}, headers=headers)
        assert after.status_code == 201  # the pool recovered
        acknowledged.add(10_000)
        applied = await wait_all_applied(runtime, acknowledged, timeout=guard(60))
        assert len(applied) == len(set(applied))  # nothing doubled
        report(
            "PostgreSQL restarted while the API takes writes",
            writes=sum(statuses.values()),
            answers=dict(sorted(statuses.items())),
            effects=len(applied),
            # a write answered 503 may still have committed (the answer was lost, not the write)
            effects_of_writes_answered_503=len(set(applied) - acknowledged),
            doubled=len(applied) - len(set(applied)),
        )
    finally:
        await client.aclose()
        await runtime.stop()
        for name in ("training", "probe"):
            await drop_database(fault_settings.service_database_url(name))
