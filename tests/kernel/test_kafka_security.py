"""Kafka security end to end on a private broker with SASL_SSL (SCRAM-SHA-512), mTLS and ACLs
(tests/kernel/secure_kafka.py): each service's principal may write only its own topic, so the
participants service's credentials cannot publish a graduation decision."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaConnectionError, TopicAuthorizationFailedError
from sqlalchemy import Column, MetaData, String, Table, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts import GraduationDecided, ParticipantStatusChanged
from pena.definition import ServiceDefinition
from pena.kafka import KafkaPublisher, connection_options, ensure_topics, make_producer
from pena.outbox import OutboxMessage, emit, outbox_row
from pena.settings import Settings
from tests.kernel.secure_kafka import ADMIN, SecureKafka, ServiceGrant, issue, make_ca
from tests.support import eventually

pytestmark = pytest.mark.kafka

SERVICES = ["participants", "graduation", "monev"]
# participants reads its own topic here (the test reads back what it wrote) besides what it consumes
GRANTS = [ServiceGrant("participants", ["participants", "graduation"]), ServiceGrant("graduation", ["participants"])]


@pytest.fixture(scope="module")
def secure_kafka() -> Iterator[SecureKafka]:
    users = {name: uuid.uuid4().hex for name in (ADMIN, "participants", "graduation")}
    broker = SecureKafka(namespace="sec" + uuid.uuid4().hex[:8], users=users)
    try:
        broker.up(GRANTS)
        yield broker
    finally:
        broker.down()
        shutil.rmtree(broker.home, ignore_errors=True)


@pytest.fixture
async def topics(secure_kafka: SecureKafka, settings: Settings) -> SecureKafka:
    # the super user creates the topics through the kernel's admin path (as `pena topics` would)
    await ensure_topics(secure_kafka.sasl_settings(settings, ADMIN), SERVICES, timeout=60)
    return secure_kafka


def status_changed(participant_id: str) -> ParticipantStatusChanged:
    return ParticipantStatusChanged(
        participant_id=participant_id,
        version=2,
        from_status="candidate",
        to_status="active",
        reason_code="enrolled",
        changed_at=datetime.now(UTC),
    )


def decision(participant_id: str) -> OutboxMessage:
    """A forged `graduation.decided` as the kernel's relay would publish it (to the graduation topic)."""
    payload = GraduationDecided(
        decision_id=str(uuid.uuid4()),
        participant_id=participant_id,
        assessment_id=str(uuid.uuid4()),
        outcome="approved",
        graduated=True,
        kind="sejahtera_mandiri",
        effective_date=date(2026, 2, 1),
        decided_at=datetime.now(UTC),
    )
    _, row = outbox_row("graduation.decided", payload, subject=participant_id, time=datetime.now(UTC))
    return OutboxMessage(row_id=1, event_name="graduation.decided", key=participant_id, envelope=row["envelope"])


async def offsets(settings: Settings, topic: str) -> dict[int, int]:
    """End offsets of every partition of a topic, read as the given principal."""
    consumer = AIOKafkaConsumer(**connection_options(settings), group_id=None)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.topic_partitions)]
        return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
    finally:
        await consumer.stop()


# a stand-in for the participants service that reads back its own status changes
seen_meta = MetaData()
seen = Table("secure_seen", seen_meta, Column("event_id", String(64), primary_key=True))


async def remember(session: AsyncSession, delivery: Delivery) -> None:
    await session.execute(insert(seen).values(event_id=delivery.event.id))


participants_double = ServiceDefinition(
    name="participants", metadata=seen_meta, handlers={"participant.status_changed": remember}
)


async def test_participants_publishes_and_consumes_its_own_event_over_sasl_ssl(
    topics: SecureKafka, settings: Settings, make_runtime
) -> None:
    secure = topics.sasl_settings(settings, "participants")
    runtime = await make_runtime([participants_double], bus="kafka", workers=True, settings_=secure)
    svc = runtime.service("participants")
    async with svc.db.transaction() as s:
        event = await emit(
            s, "participant.status_changed", status_changed("p-1"), subject="p-1", time=datetime.now(UTC)
        )

    async def applied() -> bool:
        async with svc.db.transaction() as s:
            return (await s.execute(select(seen.c.event_id))).scalars().all() == [event.id]

    # outbox relay -> KafkaPublisher -> SASL_SSL broker -> KafkaConsumerRunner -> handler
    await eventually(applied, timeout=60, what="the status change to come back through the secured broker")


async def test_participants_credentials_cannot_publish_a_graduation_decision(
    topics: SecureKafka, settings: Settings
) -> None:
    graduation_topic = topics.sasl_settings(settings, ADMIN).topic("graduation")
    admin = topics.sasl_settings(settings, ADMIN)
    before = await offsets(admin, graduation_topic)

    forger = KafkaPublisher(topics.sasl_settings(settings, "participants"))
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await forger.publish([decision("p-2")])
    finally:
        await forger.close()
    assert await offsets(admin, graduation_topic) == before, "a refused record reached the graduation topic"

    # the graduation service's own credentials do publish the same event: the refusal is the ACL's
    owner = KafkaPublisher(topics.sasl_settings(settings, "graduation"))
    try:
        await owner.publish([decision("p-2")])
    finally:
        await owner.close()
    after = await offsets(admin, graduation_topic)
    assert sum(after.values()) == sum(before.values()) + 1


async def test_wrong_password_fails_authentication(topics: SecureKafka, settings: Settings, caplog) -> None:
    producer = make_producer(topics.sasl_settings(settings, "participants", password="not-the-password"))
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await producer.start()
    finally:
        await producer.stop()
    # aiokafka logs why each bootstrap attempt failed: the broker refused the SCRAM credentials
    assert "SaslAuthenticationFailed" in caplog.text


async def test_tls_with_another_ca_fails(topics: SecureKafka, settings: Settings, tmp_path, caplog) -> None:
    stranger = make_ca(tmp_path, "stranger-ca")
    producer = make_producer(topics.sasl_settings(settings, "participants", kafka_ssl_cafile=stranger.cert))
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await producer.start()
    finally:
        await producer.stop()
    assert "CERTIFICATE_VERIFY_FAILED" in caplog.text  # the client refused the broker, before any password


async def test_mtls_client_certificate_is_the_principal(
    topics: SecureKafka, settings: Settings, tmp_path, caplog
) -> None:
    assert topics.ca is not None
    client = issue(tmp_path, topics.ca, "participants", server=False, key_password="key-secret")
    (tmp_path / "key-password").write_text("key-secret\n")  # as a mounted Secret, trailing newline included
    mtls = topics.mtls_settings(settings, client, kafka_ssl_key_password_file=tmp_path / "key-password")
    admin = topics.sasl_settings(settings, ADMIN)

    before = await offsets(admin, mtls.topic("participants"))
    publisher = KafkaPublisher(mtls)
    try:
        _, row = outbox_row("participant.status_changed", status_changed("p-3"), subject="p-3", time=datetime.now(UTC))
        await publisher.publish(
            [OutboxMessage(row_id=1, event_name="participant.status_changed", key="p-3", envelope=row["envelope"])]
        )
        with pytest.raises(TopicAuthorizationFailedError):
            await publisher.publish([decision("p-3")])
    finally:
        await publisher.close()
    assert sum((await offsets(admin, mtls.topic("participants"))).values()) == sum(before.values()) + 1

    # a certificate the broker's CA did not sign gets no connection at all
    outsider = issue(tmp_path / "outsider", make_ca(tmp_path / "outsider", "outsider-ca"), "participants", server=False)
    producer = make_producer(topics.mtls_settings(settings, outsider))
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await producer.start()
    finally:
        await producer.stop()
    # the broker ends the TLS handshake of a client certificate it cannot verify
    assert f"127.0.0.1:{topics.mtls_port} closed" in caplog.text
