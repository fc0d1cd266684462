"""PENA's records read by standard tools: one event of every contract type is produced through the
kernel's Kafka producer path (KafkaPublisher.publish, what the outbox relay calls) to a real broker,
then read back with the official CloudEvents SDK's Kafka binding and with a plain aiokafka consumer."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRecord
from cloudevents.core.bindings.kafka import KafkaMessage, from_kafka_event, from_structured_event

from pena.contracts import CONTRACTS, SERVICES
from pena.contracts.examples import example_payload
from pena.envelope import CONTENT_TYPE, TYPE_HEADER
from pena.kafka import KafkaPublisher, connection_options, ensure_topics
from pena.outbox import OutboxMessage, outbox_row
from pena.settings import Settings

pytestmark = pytest.mark.kafka


def _messages() -> list[OutboxMessage]:
    out = []
    for i, c in enumerate(CONTRACTS):
        payload = c.payload.model_validate(example_payload(c))
        subject = f"subject-{c.name}-{uuid.uuid4().hex[:8]}"
        _, row = outbox_row(c.name, payload, subject=subject, time=datetime(2026, 5, 5, 3, i, tzinfo=UTC))
        out.append(OutboxMessage(i + 1, row["event_name"], row["message_key"], row["envelope"]))
    return out


async def _read_all(settings: Settings, count: int) -> list[ConsumerRecord[bytes, bytes]]:
    consumer = AIOKafkaConsumer(
        *(settings.topic(s) for s in SERVICES),
        **connection_options(settings),
        group_id=f"{settings.topic_namespace}-integrator",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    try:
        for _ in range(60):
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                records.extend(batch)
            if len(records) >= count:
                break
    finally:
        await consumer.stop()
    return records


def _headers(record: ConsumerRecord[bytes, bytes]) -> dict[str, bytes]:
    pairs: Iterable[tuple[str, bytes]] = record.headers or ()
    return dict(pairs)


async def test_every_event_type_reads_with_the_cloudevents_sdk_and_a_plain_consumer(settings: Settings) -> None:
    await ensure_topics(settings, list(SERVICES))
    sent = _messages()
    assert {m.event_name for m in sent} == {c.name for c in CONTRACTS}
    publisher = KafkaPublisher(settings)
    try:
        await publisher.publish(sent)
    finally:
        await publisher.close()

    records = await _read_all(settings, len(sent))
    assert len(records) == len(sent)
    by_id = {m.envelope["id"]: m for m in sent}
    seen_types = set()
    for record in records:
        headers = _headers(record)
        # structured mode: no ce_ header at all, else the binding would take the record as binary mode
        assert not [h for h in headers if h.lower().startswith("ce_")], headers
        assert headers["content-type"] == CONTENT_TYPE.encode()

        # the official SDK, mode auto-detected (as integrators call it) and structured mode explicitly
        message = KafkaMessage(headers=headers, key=record.key, value=record.value or b"")
        for event in (from_kafka_event(message), from_structured_event(message)):
            original = by_id[event.get_id()]
            envelope = original.envelope
            assert event.get_specversion() == "1.0"
            assert event.get_type() == envelope["type"]
            assert event.get_source() == envelope["source"] == f"/pena/{original.service}"
            assert event.get_subject() == envelope["subject"]
            assert event.get_dataschema() == envelope["dataschema"]
            assert event.get_datacontenttype() == "application/json"
            assert event.get_time() == datetime.fromisoformat(envelope["time"])
            assert event.get_data() == envelope["data"]
            assert event.get_extension("correlationid") == envelope.get("correlationid")
        seen_types.add(event.get_type())

        # a plain consumer: the value is the JSON envelope, the topic the owner's, the key the subject
        plain = json.loads(record.value or b"")
        original = by_id[plain["id"]]
        assert plain == original.envelope
        assert record.topic == settings.topic(original.service)
        assert record.key == plain["subject"].encode()
        assert headers[TYPE_HEADER] == plain["type"].encode()
    assert seen_types == {c.type for c in CONTRACTS}
