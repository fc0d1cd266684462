"""Set-based delivery of a fetched run of events (`deliver_records` with a batch handler), on real
PostgreSQL: every effect once, in partition order, duplicates and poison handled as one by one."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import select

from pena.consumer import Delivery, deliver_fetch, deliver_records
from pena.contracts import BY_NAME
from pena.envelope import make_event
from pena.tables import dead_letters
from tests.kernel import probe
from tests.kernel.test_delivery import effects_of

COMPLETED = BY_NAME["training.completed"]


def envelope(participant_id: str, seq: int, batch_id: str = "b1", source: str = "/pena/training") -> bytes:
    return make_event(
        event_type=COMPLETED.type,
        source=source,
        subject=participant_id,
        time=datetime.now(UTC),
        data=probe.completed(participant_id, seq, batch_id).model_dump(mode="json"),
        dataschema=COMPLETED.dataschema,
    ).to_bytes()


async def batch_consumer(make_runtime):
    runtime = await make_runtime([probe.publisher, probe.consumer], bus="inprocess", workers=False)
    sub = runtime.service("probe").subscriber
    sizes: list[int] = []

    async def on_completed_batch(session, deliveries: list[Delivery]) -> None:
        sizes.append(len(deliveries))
        for delivery in deliveries:
            await probe.on_completed(session, delivery)

    sub.batch_handlers = {"training.completed": on_completed_batch}
    return runtime, sub, sizes


async def test_a_run_is_applied_in_one_batch_in_order_and_redelivery_changes_nothing(make_runtime) -> None:
    runtime, sub, sizes = await batch_consumer(make_runtime)
    topic = sub.settings.topic("training")
    e1, e2, e3, e4 = (envelope(f"p{i}", i) for i in range(1, 5))
    records = [
        (e1, f"{topic}/0/1"),
        (e2, f"{topic}/0/2"),
        (e2, f"{topic}/0/3"),
        (b"{not json", f"{topic}/0/4"),
        (e3, f"{topic}/0/5"),
        (e4, f"{topic}/0/6"),
    ]
    outcomes = await deliver_records(sub, records)
    assert outcomes == ["processed", "processed", "duplicate", "dead_lettered", "processed", "processed"]
    assert sizes == [2, 2]  # the malformed record splits the run; the repeated event is handed over once
    con = runtime.service("probe")
    assert [(p, s) for p, s, _ in await effects_of(con)] == [("p1", 1), ("p2", 2), ("p3", 3), ("p4", 4)]

    again = await deliver_records(sub, [(e1, f"{topic}/0/1"), (e2, f"{topic}/0/2"), (e3, f"{topic}/0/5")])
    assert again == ["duplicate", "duplicate", "duplicate"]
    assert sizes == [2, 2]  # nothing new: the handler was not called
    assert len(await effects_of(con)) == 4


async def test_a_failing_batch_falls_back_to_one_by_one_and_only_the_faulty_event_is_dead_lettered(
    make_runtime, settings
) -> None:
    runtime, sub, sizes = await batch_consumer(make_runtime)
    topic = sub.settings.topic("training")
    good1, poison, good2 = envelope("g1", 1), envelope("bad", 2, batch_id="poison"), envelope("g2", 3)
    outcomes = await deliver_records(sub, [(good1, f"{topic}/1/1"), (poison, f"{topic}/1/2"), (good2, f"{topic}/1/3")])
    assert outcomes == ["processed", "dead_lettered", "processed"]
    assert sizes == [3]  # the batch attempt, rolled back; then each event through the one-by-one path
    con = runtime.service("probe")
    assert [(p, s) for p, s, _ in await effects_of(con)] == [("g1", 1), ("g2", 3)]
    async with con.db.transaction() as s:
        letters = (await s.execute(select(dead_letters))).all()
    assert len(letters) == 1
    assert "cannot take poison" in letters[0].error
    assert letters[0].origin == f"{topic}/1/2"
    assert letters[0].attempts == settings.consumer_max_attempts


async def test_a_forged_event_in_a_run_is_dead_lettered_alone_and_the_run_goes_on(make_runtime) -> None:
    runtime, sub, sizes = await batch_consumer(make_runtime)
    topic = sub.settings.topic("training")
    good1, forged, good2 = envelope("g1", 1), envelope("f", 2, source="/pena/monev"), envelope("g2", 3)
    outcomes = await deliver_records(sub, [(good1, f"{topic}/1/1"), (forged, f"{topic}/1/2"), (good2, f"{topic}/1/3")])
    assert outcomes == ["processed", "dead_lettered", "processed"]
    con = runtime.service("probe")
    assert [(p, s) for p, s, _ in await effects_of(con)] == [("g1", 1), ("g2", 3)]
    async with con.db.transaction() as s:
        letters = (await s.execute(select(dead_letters))).all()
    assert [letter.error.split(":")[0] for letter in letters] == ["foreign_source"]
    assert letters[0].attempts == 0


async def test_a_fetch_of_one_run_on_every_partition_is_one_batch_in_partition_order(make_runtime) -> None:
    runtime, sub, sizes = await batch_consumer(make_runtime)
    topic = sub.settings.topic("training")
    e = {i: envelope(f"p{i}", i) for i in range(1, 8)}
    fetch = [
        [(e[1], f"{topic}/0/1"), (e[2], f"{topic}/0/2"), (e[1], f"{topic}/0/3")],
        [(e[3], f"{topic}/1/1")],
        [(e[4], f"{topic}/2/1"), (e[5], f"{topic}/2/2")],
    ]
    outcomes = await deliver_fetch(sub, fetch)
    assert outcomes == [["processed", "processed", "duplicate"], ["processed"], ["processed", "processed"]]
    assert sizes == [5]  # one transaction and one handler call for the whole fetch
    con = runtime.service("probe")
    assert [(p, s) for p, s, _ in await effects_of(con)] == [(f"p{i}", i) for i in range(1, 6)]

    # redelivered with new records: only those are applied
    again = await deliver_fetch(sub, [[(e[2], f"{topic}/0/2"), (e[6], f"{topic}/0/4")], [(e[3], f"{topic}/1/1")]])
    assert again == [["duplicate", "processed"], ["duplicate"]]
    assert sizes == [5, 1]
    assert len(await effects_of(con)) == 6


async def test_a_fetch_with_a_poison_record_goes_partition_by_partition(make_runtime) -> None:
    runtime, sub, sizes = await batch_consumer(make_runtime)
    topic = sub.settings.topic("training")
    e = {i: envelope(f"p{i}", i) for i in range(1, 6)}
    fetch = [
        [(e[1], f"{topic}/0/1"), (b"{not json", f"{topic}/0/2"), (e[2], f"{topic}/0/3")],
        [(e[3], f"{topic}/1/1"), (e[4], f"{topic}/1/2")],
    ]
    outcomes = await deliver_fetch(sub, fetch)
    assert outcomes == [["processed", "dead_lettered", "processed"], ["processed", "processed"]]
    assert sorted(sizes) == [2]  # partition 1's run; partition 0's single events went one by one
    con = runtime.service("probe")
    assert sorted((p, s) for p, s, _ in await effects_of(con)) == [(f"p{i}", i) for i in range(1, 5)]


async def test_a_failing_fetch_batch_falls_back_to_one_by_one_across_partitions(make_runtime) -> None:
    runtime, sub, sizes = await batch_consumer(make_runtime)
    topic = sub.settings.topic("training")
    good1, poison, good2 = envelope("g1", 1), envelope("bad", 2, batch_id="poison"), envelope("g2", 3)
    outcomes = await deliver_fetch(
        sub, [[(good1, f"{topic}/0/1"), (poison, f"{topic}/0/2")], [(good2, f"{topic}/1/1")]]
    )
    assert outcomes == [["processed", "dead_lettered"], ["processed"]]
    assert sizes == [3]  # the fetch's batch attempt, rolled back; then one by one
    con = runtime.service("probe")
    assert [(p, s) for p, s, _ in await effects_of(con)] == [("g1", 1), ("g2", 3)]
