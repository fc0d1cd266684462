"""The three-broker KRaft cluster secured as a managed Kafka is (`pena infra up --brokers 3 --sasl-ssl`,
here a private one on free ports; issue 15 item 1, "the cluster with SASL_SSL in another test"):
SASL_SSL listeners with SCRAM-SHA-512 and TLS from a throwaway CA on every node, inter-broker
replication over the same, the StandardAuthorizer. PENA's topics are created through the kernel's
admin path (`ensure_topics`) with the security settings, replicated 3 with min.insync.replicas=2; a
participant registered over HTTP reaches the training service through the cluster (participants'
outbox relay -> SASL_SSL -> training's consumer); a client without SASL, or with a wrong password,
gets nothing. The shared broker on 9092 is not involved; nothing but this cluster is stopped."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from aiokafka.errors import KafkaConnectionError
from sqlalchemy import select

from composition import infra
from pena.kafka import ensure_topics, make_producer
from pena.settings import Settings
from services.participants.app import definition as participants
from services.training.app import definition as training
from services.training.models import EligibleParticipant
from tests.faults.test_broker_failover import describe, distinct_free_ports, topic_configs
from tests.participants.support import woman
from tests.support import eventually

pytestmark = pytest.mark.kafka

SERVICES = ["participants", "training", "monev", "graduation"]


@pytest.fixture(scope="module")
def secure_cluster() -> Iterator[infra.KafkaCluster]:
    ports = distinct_free_ports(6)
    cluster = infra.KafkaCluster(
        size=3,
        name=f"sasl-kafka-cluster-{uuid.uuid4().hex[:8]}",  # a folder per run under PENA_HOME
        ports=tuple(ports[:3]),
        controller_ports=tuple(ports[3:]),
        sasl_ssl=True,
    )
    try:
        cluster.up(timeout=180)
        yield cluster
    finally:
        cluster.down(kill=True)
        shutil.rmtree(cluster.home, ignore_errors=True)


def secured(settings: Settings, cluster: infra.KafkaCluster, **values: object) -> Settings:
    """The test's settings pointed at the cluster as the super user (password from its file, as a
    mounted Secret), topics replicated 3; `values` override (a wrong password, no SASL)."""
    assert cluster.security is not None
    security = cluster.security.settings_values()
    base = settings.model_dump() | {"kafka_bootstrap": cluster.bootstrap, "topic_replication_factor": 3}
    return Settings(**(base | security | values))


@pytest.fixture
async def cluster_settings(settings: Settings, secure_cluster: infra.KafkaCluster) -> Settings:
    secure = secured(settings, secure_cluster)
    await ensure_topics(secure, SERVICES, timeout=120)
    return secure


async def test_topics_are_created_over_sasl_ssl_replicated_three_with_two_in_sync(cluster_settings: Settings) -> None:
    topics = [cluster_settings.topic(s) for s in SERVICES]

    async def described() -> dict[str, list[dict[str, Any]]] | None:
        # a topic just created reaches the metadata of the broker asked a moment later (seen: a topic
        # listed with no partitions yet, 2026-11-30): wait for every partition to have its leader
        found = await describe(cluster_settings, topics)
        complete = all(len(found.get(t, [])) == cluster_settings.topic_partitions for t in topics)
        return found if complete else None

    partitions = await eventually(described, timeout=60, what="every topic's partitions in the metadata")
    assert partitions is not None
    assert set(partitions) == set(topics)
    for topic in topics:
        assert len(partitions[topic]) == cluster_settings.topic_partitions
        for partition in partitions[topic]:
            assert sorted(partition["replicas"]) == [1, 2, 3], (topic, partition)
            assert len(partition["isr"]) == 3, (topic, partition)

    async def configured() -> bool:
        configs = await topic_configs(cluster_settings, topics[0])
        return configs is not None and configs["min.insync.replicas"] == "2"

    await eventually(configured, timeout=30, what="min.insync.replicas=2 on the participants topic")


async def test_a_registration_reaches_training_through_the_secured_cluster(
    cluster_settings: Settings, make_runtime, api, auth
) -> None:
    runtime = await make_runtime([participants, training], bus="kafka", workers=True, settings_=cluster_settings)
    async with api(runtime) as client:
        created = await client.post("/v1/participants", json=woman(), headers=auth("admin"))
    assert created.status_code == 201, created.text
    participant_id = created.json()["id"]

    async def known() -> bool:
        async with runtime.service("training").db.transaction() as session:
            query = select(EligibleParticipant).where(EligibleParticipant.participant_id == participant_id)
            return (await session.execute(query)).scalars().first() is not None

    # participants' outbox relay -> SASL_SSL cluster -> training's consumer group -> its read model
    await eventually(known, timeout=90, what="participant.registered consumed by training over SASL_SSL")


async def test_a_client_without_sasl_or_with_a_wrong_password_is_refused(
    settings: Settings, secure_cluster: infra.KafkaCluster, caplog: pytest.LogCaptureFixture
) -> None:
    wrong_password = {"kafka_sasl_password": "not-the-password", "kafka_sasl_password_file": None}
    wrong = make_producer(secured(settings, secure_cluster, **wrong_password))
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await wrong.start()
    finally:
        await wrong.stop()
    assert "SaslAuthenticationFailed" in caplog.text  # the brokers refused the SCRAM credentials

    # TLS to the right CA but no SASL at all: the listener talks to no unauthenticated client
    anonymous = make_producer(
        secured(
            settings,
            secure_cluster,
            kafka_security_protocol="SSL",
            kafka_sasl_username=None,
            kafka_sasl_password_file=None,
        )
    )
    try:
        with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):
            await anonymous.start()
    finally:
        await anonymous.stop()
