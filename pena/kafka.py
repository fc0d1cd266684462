"""Kafka side of the bus: idempotent producer for the outbox relay, consumer runner with manual
offset commits after the database commit, topic administration and the dead-letter topics."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import json
import logging
import ssl
from pathlib import Path
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import CommitFailedError, KafkaError, TopicAlreadyExistsError
from aiokafka.helpers import create_ssl_context

from pena import failpoints
from pena.consumer import Subscriber, deliver_fetch
from pena.envelope import CONTENT_TYPE, TYPE_HEADER
from pena.outbox import OutboxMessage
from pena.settings import Settings, kafka_security_problems

log = logging.getLogger("pena.kafka")


class KafkaSettingsError(ValueError):
    """The Kafka connection settings cannot be used; the message is one line naming the setting."""


def connection_options(settings: Settings) -> dict[str, Any]:
    """The keyword arguments that connect any aiokafka client (producer, consumer, admin) as the
    settings say: bootstrap servers, security protocol, TLS context (CA, client certificate for
    mTLS, hostname check) and SASL credentials. Every client of the project is built with these.

    Secret files are read here, on each client construction, so a rotated Kubernetes Secret is
    picked up by the next (re)connection."""
    problems = kafka_security_problems(settings)  # again: a file may have gone since start-up
    if problems:
        raise KafkaSettingsError("Kafka security settings refused: " + "; ".join(problems))
    protocol = settings.kafka_security_protocol
    options: dict[str, Any] = {"bootstrap_servers": settings.kafka_bootstrap, "security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = _ssl_context(settings)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = _secret(
            settings.kafka_sasl_password, settings.kafka_sasl_password_file, "PENA_KAFKA_SASL_PASSWORD_FILE"
        )
    return options


def _secret(value: Any, file: Path | None, name: str) -> str | None:
    if value is not None:
        return str(value.get_secret_value())
    if file is None:
        return None
    try:
        # a mounted Secret ends with the newline its author typed: it is not part of the secret
        text = file.read_text(encoding="utf-8").rstrip("\r\n")
    except (OSError, UnicodeDecodeError) as exc:
        raise KafkaSettingsError(f"{name}: cannot read {file} ({exc.__class__.__name__})") from None
    if not text:
        raise KafkaSettingsError(f"{name}: {file} is empty")
    return text


def _ssl_context(settings: Settings) -> ssl.SSLContext:
    s = settings
    try:
        context = create_ssl_context(cafile=s.kafka_ssl_cafile)
    except (ssl.SSLError, OSError, ValueError) as exc:
        problem = f"PENA_KAFKA_SSL_CAFILE: {s.kafka_ssl_cafile} holds no usable PEM CA ({exc})"
        raise KafkaSettingsError(problem) from None
    if s.kafka_ssl_certfile is not None:
        password = _secret(s.kafka_ssl_key_password, s.kafka_ssl_key_password_file, "PENA_KAFKA_SSL_KEY_PASSWORD_FILE")
        try:
            context.load_cert_chain(s.kafka_ssl_certfile, s.kafka_ssl_keyfile, password)
        except (ssl.SSLError, OSError, ValueError) as exc:
            raise KafkaSettingsError(
                "PENA_KAFKA_SSL_CERTFILE/PENA_KAFKA_SSL_KEYFILE: cannot load the client certificate and key"
                f" (wrong file, key not matching, or wrong key password: {exc})"
            ) from None
    # create_ssl_context verifies the broker's certificate and its host name; the name check may
    # be turned off (brokers reached by an address their certificate does not name), never the chain
    context.check_hostname = s.kafka_ssl_check_hostname
    return cast(ssl.SSLContext, context)


def make_producer(settings: Settings) -> AIOKafkaProducer:
    # enable_idempotence forces acks=all and dedupes the producer's own retries on the broker
    return AIOKafkaProducer(
        **connection_options(settings),
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        # a partition's batch up to 256 KiB (aiokafka's default 16 KiB holds about twelve 1.3 KB
        # envelopes): the relay publishing a bulk import's events spends about half the CPU per
        # event (docs/benchmarks.md, "Bulk import: ... perfimport2"); well under the broker's 1 MB
        # message.max.bytes, and a cap, not a wait (linger_ms decides that)
        max_batch_size=256 * 1024,
        request_timeout_ms=15000,
        retry_backoff_ms=200,
        client_id=f"{settings.topic_namespace}-producer",
    )


class KafkaPublisher:
    """Publisher for the outbox relay. Starts lazily and restarts after broker failures."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        connection_options(settings)  # unusable certificates or secret files stop the start-up here
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()
        self.healthy = False

    async def _ensure(self) -> AIOKafkaProducer:
        async with self._lock:
            if self._producer is None:
                producer = make_producer(self.settings)
                try:
                    await producer.start()
                except Exception:
                    await producer.stop()
                    raise
                self._producer = producer
            return self._producer

    async def publish(self, messages: list[OutboxMessage]) -> None:
        producer = await self._ensure()
        try:
            futures = [
                await producer.send(
                    self.settings.topic(m.service),
                    value=json.dumps(m.envelope).encode(),
                    key=m.key.encode() if m.key else None,
                    headers=_headers(m.envelope),
                )
                for m in messages
            ]
            await asyncio.gather(*futures)
            self.healthy = True
        except Exception:
            self.healthy = False
            await self.close()  # a fresh producer after the broker returns
            raise

    async def send_raw(
        self, topic: str, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None
    ) -> None:
        producer = await self._ensure()
        await (await producer.send(topic, value=value, key=key, headers=headers))

    async def close(self) -> None:
        async with self._lock:
            if self._producer is not None:
                producer, self._producer = self._producer, None
                with contextlib.suppress(Exception):
                    await producer.stop()


def _headers(envelope: dict[str, Any]) -> list[tuple[str, bytes]]:
    """Structured-mode CloudEvents headers: the envelope (the record value) is the event, so no
    `ce_` header is set (the Kafka protocol binding takes any `ce_` header as binary mode, and the
    CloudEvents SDKs then read the attributes from the headers and refuse the record). `pena-type`
    lets a consumer route without parsing the value; `traceparent` is the W3C trace context."""
    headers = [
        ("content-type", CONTENT_TYPE.encode()),
        (TYPE_HEADER, str(envelope["type"]).encode()),
    ]
    if envelope.get("traceparent"):
        headers.append(("traceparent", str(envelope["traceparent"]).encode()))
    return headers


async def ensure_topics(settings: Settings, services: list[str], *, timeout: float = 60.0) -> None:
    """Creates each service's topic and dead-letter topic when missing (auto-creation is off on purpose)."""
    topics = [t for s in services for t in (settings.topic(s), settings.dead_letter_topic(s))]
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        admin = AIOKafkaAdminClient(**connection_options(settings), request_timeout_ms=10000)
        try:
            await admin.start()
            existing = set(await admin.list_topics())
            missing = [t for t in topics if t not in existing]
            if missing:
                with contextlib.suppress(TopicAlreadyExistsError):
                    await admin.create_topics(
                        [
                            NewTopic(
                                t,
                                num_partitions=settings.topic_partitions if not t.endswith(".DLT") else 1,
                                replication_factor=settings.topic_replication_factor,
                            )
                            for t in missing
                        ]
                    )
            return
        except KafkaError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(1.0)
        finally:
            await admin.close()


_heap_settled = False


def settle_heap() -> None:
    """Once per process (`pena serve` before uvicorn starts; elsewhere when the first consumer starts):
    what exists by then (modules, settings, contracts, the app, the runtime) lives as long as the
    process, so it is collected once and then frozen out of the cyclic garbage collector's way
    (`gc.freeze`). Consumers and imports allocate many short-lived objects per event or row, which
    triggers frequent collections; the oldest generation's no longer walk the whole start-up heap
    (monev's consumer: CPU per event 87 against 115 us; docs/benchmarks.md)."""
    global _heap_settled
    if not _heap_settled:
        _heap_settled = True
        gc.collect()
        gc.freeze()


class KafkaConsumerRunner:
    """Consumes the topics of the services a subscriber listens to, one consumer group per service.

    Offsets are committed only after the database transactions of a fetch, so a crash anywhere
    redelivers and the inbox makes the redelivery harmless. Records of one partition are handled in
    order (the partition key is the participant id); runs of events with a batch handler are applied
    in one transaction each, a fetch that is one such run in one transaction for all its partitions."""

    def __init__(
        self,
        sub: Subscriber,
        settings: Settings,
        source_services: list[str],
        dead_letter_publisher: KafkaPublisher | None = None,
    ) -> None:
        self.sub = sub
        self.settings = settings
        self.topics = [settings.topic(s) for s in source_services]
        self.publisher = dead_letter_publisher or KafkaPublisher(settings)
        self.sub.dead_letter_sinks.append(self._to_dead_letter_topic)
        self.assigned = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._in_flight: dict[TopicPartition, int] = {}  # fetched records whose offsets are not committed yet

    async def _to_dead_letter_topic(self, record: dict[str, Any]) -> None:
        origin_topic = record["origin"].split("/")[0]
        body = dict(record.items()) | {"failed_at": self.sub.clock.now().isoformat()}
        await self.publisher.send_raw(
            f"{origin_topic}.DLT",
            json.dumps(body).encode(),
            headers=[("pena-error", str(record["error"])[:200].encode()), ("pena-consumer", self.sub.name.encode())],
        )

    async def run(self, stop: asyncio.Event) -> None:
        settle_heap()
        while not stop.is_set():
            consumer: AIOKafkaConsumer | None = None
            try:
                # built inside the retry: a secret file replaced mid-rotation is read again next round
                consumer = AIOKafkaConsumer(
                    *self.topics,
                    **connection_options(self.settings),
                    group_id=self.settings.consumer_group(self.sub.name),
                    enable_auto_commit=False,
                    auto_offset_reset="earliest",
                    isolation_level="read_committed",
                    max_poll_records=self.settings.consumer_fetch_max_records,
                    client_id=f"{self.settings.consumer_group(self.sub.name)}-consumer",
                )
                await consumer.start()
                self._consumer = consumer
                await self._consume(consumer, stop)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("consumer restarting", extra={"consumer": self.sub.name, "error": repr(exc)[:300]})
                await asyncio.sleep(1.0)
            finally:
                self._consumer = None
                self._in_flight.clear()
                if consumer is not None:
                    with contextlib.suppress(Exception):
                        await consumer.stop()
        await self.publisher.close()

    async def lag(self) -> dict[str, int]:
        """Records behind per topic on the partitions this consumer holds: the highwater the last
        fetch saw minus the consumer's position, plus the fetched records not committed yet. From the
        client's own state, no broker round trip (a partition not fetched yet counts 0)."""
        behind = dict.fromkeys(self.topics, 0)
        consumer = self._consumer
        if consumer is None:
            return behind
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is None or tp.topic not in behind:
                continue
            try:
                position = await asyncio.wait_for(consumer.position(tp), timeout=0.1)
            except (TimeoutError, KafkaError):
                continue  # being (re)assigned: counted next time
            behind[tp.topic] += max(0, highwater - position) + self._in_flight.get(tp, 0)
        return behind

    async def _consume(self, consumer: AIOKafkaConsumer, stop: asyncio.Event) -> None:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=self.settings.consumer_fetch_max_records)
            if consumer.assignment():
                self.assigned.set()
            if batches:
                await self._deliver_fetch(consumer, batches)

    async def _deliver_fetch(
        self, consumer: AIOKafkaConsumer, batches: dict[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        """A fetch (every partition's records) through `deliver_fetch`: one transaction for all of it
        when it is one run of batch-handled events, else each partition side by side (its Python work
        overlapping another's round trips), records in order within a partition. The offsets are
        committed after the database commits of the whole fetch, in one request; a crash before that
        redelivers the fetch and the inbox skips what was already applied."""
        self._in_flight.update({tp: len(records) for tp, records in batches.items()})
        try:
            origin = "{0.topic}/{0.partition}/{0.offset}".format
            partitions = [[(r.value or b"", origin(r)) for r in rs] for rs in batches.values()]
            await deliver_fetch(self.sub, partitions)
            failpoints.hit("consumer.before_offset_commit")
            await self._commit(consumer, {tp: records[-1].offset + 1 for tp, records in batches.items()})
        finally:
            for tp in batches:
                self._in_flight.pop(tp, None)

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        try:
            await consumer.commit(offsets)
        except CommitFailedError:
            # partitions moved to another member mid-batch: it will redeliver; the inbox dedupes
            log.info("offset commit lost to a rebalance", extra={"consumer": self.sub.name})
