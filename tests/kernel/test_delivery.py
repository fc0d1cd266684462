"""Delivery guarantees of the kernel, on real Kafka and on the in-process bus, with real PostgreSQL."""

from __future__ import annotations

import asyncio
import json

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import func, select, update

from pena import failpoints
from pena.kafka import connection_options, ensure_topics
from pena.outbox import OutboxRelay
from pena.tables import OUTBOX_CHANNEL, dead_letters, inbox, outbox
from tests.kernel import probe
from tests.support import eventually, read_topic

BUSES = ["kafka", "inprocess"]


async def start(make_runtime, settings, bus: str):
    if bus == "kafka":
        await ensure_topics(settings, ["training", "probe"])
    # workers off: the test drives relays itself; on Kafka the consumer runs in the background
    runtime = await make_runtime([probe.publisher, probe.consumer], bus=bus, workers=False)
    if bus == "kafka":
        con = runtime.service("probe")
        runtime._tasks.append(asyncio.create_task(con.consumer.run(runtime._stop)))
    return runtime, runtime.service("training"), runtime.service("probe")


async def effects_of(con) -> list[tuple[str, int, str]]:
    async with con.db.transaction() as s:
        rows = await s.execute(
            select(probe.effects.c.participant_id, probe.effects.c.seq, probe.effects.c.batch_id).order_by(
                probe.effects.c.id
            )
        )
        return [tuple(r) for r in rows.all()]


async def wait_effects(con, n: int) -> list[tuple[str, int, str]]:
    async def enough() -> bool:
        return len(await effects_of(con)) >= n

    await eventually(enough, what=f"{n} effects")
    await asyncio.sleep(0.3)  # give any wrong extra effect time to show up before counting
    return await effects_of(con)


@pytest.mark.parametrize("bus", BUSES)
async def test_relay_crash_after_publish_republishes_but_effect_is_single(make_runtime, settings, bus) -> None:
    runtime, pub, con = await start(make_runtime, settings, bus)
    async with pub.db.transaction() as s:
        for i in range(3):
            await probe.create_thing(s, f"p{i}", i)
    failpoints.arm("relay.after_publish")
    with pytest.raises(failpoints.FailPointHit):
        await pub.relay.run_once()  # published, then "crashed" before marking
    async with pub.db.transaction() as s:
        unpublished = (
            await s.execute(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
        ).scalar_one()
    assert unpublished == 3  # nothing was marked: the restart publishes again
    assert await pub.relay.drain() == 3
    effects = await wait_effects(con, 3)
    assert sorted(effects) == [("p0", 0, "b1"), ("p1", 1, "b1"), ("p2", 2, "b1")]
    if bus == "kafka":
        on_topic = await read_topic(settings.kafka_bootstrap, settings.topic("training"), expect=6)
        assert len(on_topic) == 6  # each event twice on the wire, once in effect
        assert len({m["value"]["id"] for m in on_topic}) == 3


@pytest.mark.parametrize("bus", BUSES)
async def test_redelivered_event_changes_nothing_and_one_participant_stays_in_order(
    make_runtime, settings, bus
) -> None:
    runtime, pub, con = await start(make_runtime, settings, bus)
    async with pub.db.transaction() as s:
        for i in range(30):
            await probe.create_thing(s, "family-1", i)
            await probe.create_thing(s, f"other-{i % 4}", i)
    assert await pub.relay.drain() == 60
    # redeliver everything: mark unpublished and relay again (same event ids)
    async with pub.db.transaction() as s:
        await s.execute(update(outbox).values(published_at=None))
    assert await pub.relay.drain() == 60
    effects = await wait_effects(con, 60)
    assert len(effects) == 60
    family = [seq for pid, seq, _ in effects if pid == "family-1"]
    assert family == list(range(30))  # one family's events applied in the order they were written
    async with con.db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(inbox))).scalar_one() == 60


@pytest.mark.parametrize("bus", BUSES)
async def test_a_handler_refusing_an_event_parks_it_at_once_without_retries(make_runtime, settings, bus) -> None:
    runtime, pub, con = await start(make_runtime, settings, bus)
    async with pub.db.transaction() as s:
        await probe.create_thing(s, "p-refused", 1, batch_id="refused")
        await probe.create_thing(s, "p-good", 2)
    await pub.relay.drain()
    assert await wait_effects(con, 1) == [("p-good", 2, "b1")]

    async def dead_lettered() -> bool:
        async with con.db.transaction() as s:
            return bool((await s.execute(select(dead_letters))).all())

    await eventually(dead_lettered, what="the refused event's dead letter")
    async with con.db.transaction() as s:
        letters = (await s.execute(select(dead_letters))).all()
    assert len(letters) == 1
    assert letters[0].error.startswith("PoisonEvent: transition_refused")
    assert letters[0].attempts == 1  # not consumer_max_attempts: retrying cannot change the answer
    assert await effects_of(con) == [("p-good", 2, "b1")]


@pytest.mark.parametrize("bus", BUSES)
async def test_failing_handler_dead_letters_with_reason_and_consumer_moves_on(make_runtime, settings, bus) -> None:
    runtime, pub, con = await start(make_runtime, settings, bus)
    async with pub.db.transaction() as s:
        await probe.create_thing(s, "p-poison", 1, batch_id="poison")
        await probe.create_thing(s, "p-good", 2)
    await pub.relay.drain()
    effects = await wait_effects(con, 1)
    assert effects == [("p-good", 2, "b1")]

    # on Kafka the two events may sit on different partitions, delivered side by side: the good one
    # can be applied while the poison one is still being retried
    async def dead_lettered() -> bool:
        async with con.db.transaction() as s:
            return bool((await s.execute(select(dead_letters))).all())

    await eventually(dead_lettered, what="the poison event's dead letter")
    async with con.db.transaction() as s:
        letters = (await s.execute(select(dead_letters))).all()
    assert len(letters) == 1
    assert await effects_of(con) == [("p-good", 2, "b1")]
    assert "cannot take poison" in letters[0].error
    assert letters[0].attempts == settings.consumer_max_attempts
    if bus == "kafka":
        dlt = await read_topic(settings.kafka_bootstrap, settings.dead_letter_topic("training"), expect=1)
        assert len(dlt) == 1
        assert "cannot take poison" in dlt[0]["value"]["error"]
        assert dlt[0]["value"]["origin"].startswith(settings.topic("training"))


async def test_two_relays_at_once_publish_every_row_once_in_effect(make_runtime, settings) -> None:
    runtime, pub, con = await start(make_runtime, settings, "kafka")
    async with pub.db.transaction() as s:
        for i in range(400):
            await probe.create_thing(s, f"p{i % 37}", i)
    second = OutboxRelay(pub.db, runtime.publisher, service="training", batch_size=25)
    pub.relay.batch_size = 25
    published = await asyncio.gather(pub.relay.drain(), second.drain())
    assert sum(published) == 400  # SKIP LOCKED: the relays split the rows, none published twice here
    effects = await wait_effects(con, 400)
    assert sorted(seq for _, seq, _ in effects) == list(range(400))


@pytest.mark.parametrize("bus", BUSES)
async def test_rolled_back_change_publishes_nothing(make_runtime, settings, bus) -> None:
    runtime, pub, con = await start(make_runtime, settings, bus)
    with pytest.raises(RuntimeError):  # noqa: PT012 - the raise inside the transaction is the point
        async with pub.db.transaction() as s:
            await probe.create_thing(s, "p-rolled-back", 1)
            raise RuntimeError("use case failed after emitting")
    async with pub.db.transaction() as s:
        await probe.create_thing(s, "p-kept", 2)
    assert await pub.relay.drain() == 1
    assert await wait_effects(con, 1) == [("p-kept", 2, "b1")]


async def test_malformed_and_unknown_events_go_to_dead_letter_topic_without_personal_data(
    make_runtime, settings
) -> None:
    runtime, pub, con = await start(make_runtime, settings, "kafka")
    producer = AIOKafkaProducer(**connection_options(settings))
    await producer.start()
    try:
        topic = settings.topic("training")
        await producer.send_and_wait(topic, b'{"not": "a cloudevent", "nik": "1371014508900001"}', key=b"x")
        unknown = {
            "specversion": "1.0",
            "id": "u-1",
            "source": "/elsewhere",
            "type": "com.example.unknown.v1",
            "time": "2026-01-01T00:00:00Z",
            "data": {"nik": "3171014508900002"},
        }
        await producer.send_and_wait(topic, json.dumps(unknown).encode(), key=b"x")
    finally:
        await producer.stop()
    async with pub.db.transaction() as s:
        await probe.create_thing(s, "p-after", 7)
    await pub.relay.drain()
    assert await wait_effects(con, 1) == [("p-after", 7, "b1")]  # the partition moved on
    dlt = await read_topic(settings.kafka_bootstrap, settings.dead_letter_topic("training"), expect=2)
    errors = sorted(m["value"]["error"] for m in dlt)
    assert errors[0].startswith("malformed CloudEvent")
    assert errors[1].startswith("unknown event type")
    assert all("1371014508900001" not in json.dumps(m["value"]) for m in dlt)
    assert all("3171014508900002" not in json.dumps(m["value"]) for m in dlt)  # parseable but foreign
    async with con.db.transaction() as s:
        stored = json.dumps([dict(r._mapping) for r in (await s.execute(select(dead_letters))).all()], default=str)
    assert "3171014508900002" not in stored
    assert "1371014508900001" not in stored


@pytest.mark.parametrize("bus", BUSES)
async def test_replaying_a_dead_letter_after_a_fix_applies_it_once(make_runtime, settings, bus) -> None:
    from pena.consumer import replay_dead_letters

    runtime, pub, con = await start(make_runtime, settings, bus)
    async with pub.db.transaction() as s:
        await probe.create_thing(s, "p-later-fixed", 3, batch_id="poison")
    await pub.relay.drain()

    async def parked() -> bool:
        async with con.db.transaction() as s:
            return (await s.execute(select(func.count()).select_from(dead_letters))).scalar_one() == 1

    await eventually(parked, what="dead letter")
    original = con.subscriber.handlers["training.completed"]

    async def fixed(session, delivery):  # the "deployed fix": accept poison batches
        delivery.payload.batch_id = "fixed"
        await original(session, delivery)

    con.subscriber.handlers["training.completed"] = fixed
    first = await replay_dead_letters(con.subscriber)
    second = await replay_dead_letters(con.subscriber)
    assert list(first.values()) == ["processed"]
    assert second == {}
    assert await effects_of(con) == [("p-later-fixed", 3, "fixed")]


class CountingPublisher:
    """The runtime's publisher, counting the batches (claim-publish-mark cycles) handed to it."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.batches: list[int] = []

    async def publish(self, messages) -> None:
        self.batches.append(len(messages))
        await self.inner.publish(messages)


async def test_a_gathering_relay_publishes_several_commits_in_one_cycle(make_runtime, settings) -> None:
    """relay_gather_seconds (`pena serve --role workers`): woken by a commit, the relay waits before
    claiming, so the rows of the commits that follow go out in the same cycle; none is lost."""
    runtime, pub, con = await start(make_runtime, settings, "inprocess")
    counting = CountingPublisher(runtime.publisher)
    relay = OutboxRelay(pub.db, counting, service="training", gather_seconds=0.5, idle_poll_seconds=30)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await asyncio.sleep(0.5)  # the relay found nothing and listens
        for i in range(5):  # five commits 50 ms apart, all within the gathering time
            async with pub.db.transaction() as s:
                await probe.create_thing(s, f"p{i}", i)
            await asyncio.sleep(0.05)
        effects = await wait_effects(con, 5)
    finally:
        stop.set()
        await task
    assert sorted(seq for _, seq, _ in effects) == list(range(5))
    assert sum(counting.batches) == 5
    assert len(counting.batches) <= 2, counting.batches  # one cycle (two if the first commit raced the LISTEN)


async def test_of_concurrent_outbox_writers_one_notifies_and_the_relay_still_publishes_all(
    make_runtime, settings
) -> None:
    """PostgreSQL serialises the commits of notifying transactions, so the outbox trigger notifies only
    from the one writer holding OUTBOX_NOTIFY_LOCK at the time (pena.tables.OUTBOX_NOTIFY_SQL); a
    writer committing beside it stays silent. The relay still publishes every row: the silent writer's
    with the notifying one's, or at its next claim (it claims again shortly after each batch), or, for
    a straggler committing long after, at its idle poll: later, never lost."""
    runtime, pub, con = await start(make_runtime, settings, "inprocess")
    heard: list[str] = []
    listener = await pub.db.raw_connection()
    await listener.add_listener(OUTBOX_CHANNEL, lambda *args: heard.append(args[2]))
    try:
        async with pub.db.transaction() as first, pub.db.transaction() as second:  # both open at once
            await probe.create_thing(first, "p-first", 1)
            await probe.create_thing(second, "p-second", 2)
        await asyncio.sleep(0.3)
        assert len(heard) == 1  # the first notified; the second, committing beside it, did not
        async with pub.db.transaction() as alone:
            await probe.create_thing(alone, "p-alone", 3)
        await asyncio.sleep(0.3)
        assert len(heard) == 2  # a writer on its own notifies
    finally:
        await listener.close()

    relay = OutboxRelay(pub.db, runtime.publisher, service="training", idle_poll_seconds=1.0)
    stop = asyncio.Event()
    task = asyncio.create_task(relay.run(stop))
    try:
        await wait_effects(con, 3)  # what was there when it started
        loud, quiet = pub.db.transaction(), pub.db.transaction()
        await probe.create_thing(await loud.__aenter__(), "p-loud", 4)  # holds the lock: notifies
        await probe.create_thing(await quiet.__aenter__(), "p-quiet", 5)  # silent
        await loud.__aexit__(None, None, None)
        await wait_effects(con, 4)  # the relay woke, published the loud row, claimed again: nothing
        await quiet.__aexit__(None, None, None)  # the straggler commits, silently
        started = asyncio.get_running_loop().time()
        effects = await wait_effects(con, 5)
        assert asyncio.get_running_loop().time() - started < 1.0 + 2.0  # its idle poll, not lost
    finally:
        stop.set()
        await task
    assert sorted(seq for _, seq, _ in effects) == [1, 2, 3, 4, 5]
