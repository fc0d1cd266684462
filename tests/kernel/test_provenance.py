"""Events only from their owners (issue 13, item 3): a consumer applies an event type only when it came
from the topic (in-process: the outbox) of the service that owns it and carries that service's
CloudEvents `source`; anything else is dead-lettered with the reason and never reaches the handler.
On real Kafka and on the in-process bus, with real PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, date, datetime
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery, replay_dead_letters
from pena.contracts import BY_NAME, GraduationAssessed, GraduationDecided
from pena.definition import ServiceDefinition
from pena.envelope import CloudEvent, make_event
from pena.kafka import connection_options, ensure_topics
from pena.outbox import emit, emit_rows, outbox_row
from pena.runtime import Runtime, ServiceRuntime
from pena.settings import Settings
from pena.tables import dead_letters
from tests.conftest import RuntimeFactory
from tests.support import eventually, graduation_publisher, participants_publisher, read_topic

DECIDED = BY_NAME["graduation.decided"]

meta = MetaData()
applied = Table("probe_applied", meta, Column("event_id", String(64), primary_key=True))


async def on_decided(session: AsyncSession, delivery: Delivery) -> None:
    await session.execute(insert(applied).values(event_id=delivery.event.id))


async def on_registered(session: AsyncSession, delivery: Delivery) -> None:
    """Subscribes the probe to the participants topic too (where the forged decision is written)."""


consumer = ServiceDefinition(
    name="probe", metadata=meta, handlers={"graduation.decided": on_decided, "participant.registered": on_registered}
)


def decision(participant_id: str) -> GraduationDecided:
    return GraduationDecided(
        decision_id=f"d-{participant_id}",
        participant_id=participant_id,
        assessment_id=f"a-{participant_id}",
        outcome="approved",
        graduated=True,
        kind="sejahtera_mandiri",
        effective_date=date(2026, 2, 1),
        decided_at=datetime(2026, 1, 5, tzinfo=UTC),
    )


def decided_event(participant_id: str, *, source: str = "/pena/graduation") -> CloudEvent:
    return make_event(
        event_type=DECIDED.type,
        source=source,
        subject=participant_id,
        time=datetime.now(UTC),
        data=decision(participant_id).model_dump(mode="json"),
        dataschema=DECIDED.dataschema,
    )


async def applied_ids(svc: ServiceRuntime) -> list[str]:
    async with svc.db.transaction() as session:
        return list((await session.execute(select(applied.c.event_id))).scalars())


async def letters(svc: ServiceRuntime) -> dict[str | None, dict[str, Any]]:
    """Dead letters by event id (None: not even parseable): error, origin, attempts."""
    async with svc.db.transaction() as session:
        rows = (await session.execute(select(dead_letters))).all()
    return {r.event_id: {"error": r.error, "origin": r.origin, "attempts": r.attempts} for r in rows}


async def test_on_kafka_a_decision_from_the_wrong_topic_or_source_is_dead_lettered_and_never_applied(
    make_runtime: RuntimeFactory, settings: Settings
) -> None:
    await ensure_topics(settings, ["participants", "graduation", "probe"])
    runtime = await make_runtime([consumer], bus="kafka", workers=False)
    probe = runtime.service("probe")
    assert probe.consumer is not None
    runtime._tasks.append(asyncio.create_task(probe.consumer.run(runtime._stop)))

    on_wrong_topic = decided_event("p-1")  # the owner's source, but written to the participants topic
    forged_source = decided_event("p-1", source="/pena/participants")  # the right topic, a forged source
    no_source = decided_event("p-1").model_dump(mode="json", exclude_none=True)
    del no_source["source"]
    genuine = decided_event("p-1")
    producer = AIOKafkaProducer(**connection_options(settings))
    await producer.start()
    try:
        await producer.send_and_wait(settings.topic("participants"), on_wrong_topic.to_bytes(), key=b"p-1")
        # one key: one partition, in this order; the genuine decision comes last on its topic
        for raw in (forged_source.to_bytes(), json.dumps(no_source).encode(), genuine.to_bytes()):
            await producer.send_and_wait(settings.topic("graduation"), raw, key=b"p-1")
    finally:
        await producer.stop()

    async def three_letters() -> dict[str | None, dict[str, Any]] | None:
        found = await letters(probe)
        return found if len(found) >= 3 else None

    parked = await eventually(three_letters, what="three dead letters")
    assert parked is not None
    await eventually(lambda: applied_ids(probe), what="the genuine decision applied")
    await asyncio.sleep(0.3)  # time for any wrong extra effect to show
    assert await applied_ids(probe) == [genuine.id]  # the handler ran for the genuine one only

    assert parked[on_wrong_topic.id]["error"].startswith("foreign_topic: graduation.decided is owned by graduation")
    assert parked[on_wrong_topic.id]["origin"].startswith(settings.topic("participants") + "/")
    assert parked[forged_source.id]["error"].startswith("foreign_source: graduation.decided must carry source")
    assert "'/pena/participants'" in parked[forged_source.id]["error"]
    assert parked[None]["error"].startswith("malformed CloudEvent: source")  # not parsed: no event id kept
    assert all(letter["attempts"] == 0 for letter in parked.values())  # refused, not retried

    on_participants_dlt = await read_topic(
        settings.kafka_bootstrap, settings.dead_letter_topic("participants"), expect=1
    )
    on_graduation_dlt = await read_topic(settings.kafka_bootstrap, settings.dead_letter_topic("graduation"), expect=2)
    assert [m["value"]["event_id"] for m in on_participants_dlt] == [on_wrong_topic.id]
    assert on_participants_dlt[0]["value"]["error"].startswith("foreign_topic")
    assert {m["value"]["event_id"] for m in on_graduation_dlt} == {forged_source.id, None}

    # a replay after a fix does not launder them: the rule holds again and they stay parked
    results = await replay_dead_letters(probe.subscriber)  # type: ignore[arg-type]
    assert sorted(results.values()) == [
        "failed: foreign_source",
        "failed: foreign_topic",
        "failed: malformed CloudEvent",
    ]
    assert await applied_ids(probe) == [genuine.id]


async def _inprocess(make_runtime: RuntimeFactory) -> tuple[Runtime, ServiceRuntime]:
    runtime = await make_runtime([participants_publisher, graduation_publisher, consumer], bus="inprocess")
    return runtime, runtime.service("probe")


async def test_in_process_a_decision_from_another_outbox_or_with_a_forged_source_is_dead_lettered(
    make_runtime: RuntimeFactory,
) -> None:
    runtime, probe = await _inprocess(make_runtime)
    now = datetime.now(UTC)
    async with runtime.service("participants").db.transaction() as session:  # not the owner's outbox
        from_participants = await emit(session, "graduation.decided", decision("p-2"), subject="p-2", time=now)
    forged, forged_row = outbox_row("graduation.decided", decision("p-2"), subject="p-2", time=now)
    forged_row["envelope"]["source"] = "/pena/participants"
    async with runtime.service("graduation").db.transaction() as session:
        await emit_rows(session, [forged_row])
        genuine = await emit(session, "graduation.decided", decision("p-2"), subject="p-2", time=now)
    assert await runtime.service("participants").relay.drain() == 1  # type: ignore[union-attr]
    assert await runtime.service("graduation").relay.drain() == 2  # type: ignore[union-attr]

    assert await applied_ids(probe) == [genuine.id]
    parked = await letters(probe)
    assert set(parked) == {from_participants.id, forged.id}
    assert parked[from_participants.id]["error"].startswith("foreign_topic")
    assert parked[from_participants.id]["origin"].startswith("inprocess/participants/")
    assert parked[forged.id]["error"].startswith("foreign_source")


async def test_a_foreign_event_is_parked_even_of_a_type_the_consumer_would_ignore(
    make_runtime: RuntimeFactory,
) -> None:
    """The probe has no handler for graduation.assessed: from its owner it is ignored; out of the
    participants outbox it is parked as foreign_topic, not silently ignored."""
    runtime, probe = await _inprocess(make_runtime)
    assessed = GraduationAssessed(
        assessment_id="a-3",
        participant_id="p-3",
        monev_task_id="t-3",
        outcome="ready",
        policy_id="policy",
        policy_version=1,
        criteria=[],
        assessed_at=datetime(2026, 1, 5, tzinfo=UTC),
    )
    now = datetime.now(UTC)
    async with runtime.service("graduation").db.transaction() as session:
        await emit(session, "graduation.assessed", assessed, subject="p-3", time=now)
    async with runtime.service("participants").db.transaction() as session:
        foreign = await emit(session, "graduation.assessed", assessed, subject="p-3", time=now)
    await runtime.service("graduation").relay.drain()  # type: ignore[union-attr]
    await runtime.service("participants").relay.drain()  # type: ignore[union-attr]
    parked = await letters(probe)
    assert list(parked) == [foreign.id]
    assert parked[foreign.id]["error"].startswith("foreign_topic: graduation.assessed is owned by graduation")


@pytest.mark.parametrize(
    ("origin", "reason"),
    [("inprocess/graduation/1", None), ("inprocess/participants/1", "foreign_topic"), ("test", "foreign_topic")],
)
async def test_an_origin_naming_no_owner_fails_closed(
    make_runtime: RuntimeFactory, origin: str, reason: str | None
) -> None:
    from pena.consumer import deliver

    runtime, probe = await _inprocess(make_runtime)
    event = decided_event("p-4")
    outcome = await deliver(probe.subscriber, event.to_bytes(), origin=origin)  # type: ignore[arg-type]
    assert outcome == ("processed" if reason is None else "dead_lettered")
    assert await applied_ids(probe) == ([event.id] if reason is None else [])
    if reason:
        assert (await letters(probe))[event.id]["error"].startswith(reason)
