"""Runs one or more services in a process: their databases, outbox relays, consumers (Kafka or the
in-process bus) and schedulers as background tasks, and the sampler of the live gauges (outbox
backlog, consumer lag). `pena serve` runs one service on Kafka; `pena dev` runs all four with the
in-process bus. Tracing is set up here from the settings (pena.telemetry)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Literal

from pena import metrics, telemetry
from pena.bus import InProcessBus
from pena.clock import Clock, OffsetClock
from pena.consumer import Subscriber
from pena.db import Database
from pena.definition import ServiceDefinition
from pena.kafka import KafkaConsumerRunner, KafkaPublisher, ensure_topics
from pena.migrate import migrate, require_head
from pena.outbox import OutboxRelay, Publisher, pending_count
from pena.retention import RETENTION_JOB, retention_job, schedule_retention
from pena.scheduler import Scheduler
from pena.settings import Settings

log = logging.getLogger("pena.runtime")


@dataclass
class ServiceRuntime:
    definition: ServiceDefinition
    db: Database
    settings: Settings
    clock: Clock
    relay: OutboxRelay | None = None
    subscriber: Subscriber | None = None
    scheduler: Scheduler | None = None
    consumer: KafkaConsumerRunner | None = None
    state: dict[str, object] = field(default_factory=dict)  # service-owned singletons (e.g. caches)

    @property
    def name(self) -> str:
        return self.definition.name


class Runtime:
    def __init__(
        self,
        settings: Settings,
        definitions: list[ServiceDefinition],
        *,
        clock: Clock | None = None,
        bus: Literal["kafka", "inprocess"] | None = None,
        workers: bool = True,
        migrate_on_start: bool = True,
    ) -> None:
        self.settings = settings
        # False (`pena serve --no-migrate`): no DDL at start, only a check that the schema is at head
        self.migrate_on_start = migrate_on_start
        self.clock = clock or OffsetClock(settings.clock_offset)
        self.bus_kind = bus or settings.bus
        self.workers = workers
        telemetry.configure(settings, [d.name for d in definitions])  # nothing unless PENA_OTEL_EXPORTER is set
        self.services: dict[str, ServiceRuntime] = {
            d.name: ServiceRuntime(d, Database.for_service(settings, d.name), settings, self.clock) for d in definitions
        }
        telemetry.instrument_engines([svc.db.engine for svc in self.services.values()])
        self.publisher: Publisher
        self.kafka_publisher: KafkaPublisher | None = None
        if self.bus_kind == "inprocess":
            self.bus: InProcessBus | None = InProcessBus()
            self.publisher = self.bus
        else:
            self.bus = None
            self.kafka_publisher = KafkaPublisher(settings)
            self.publisher = self.kafka_publisher
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._wire()

    def _wire(self) -> None:
        s = self.settings
        for svc in self.services.values():
            d = svc.definition
            svc.relay = OutboxRelay(
                svc.db,
                self.publisher,
                service=d.name,
                batch_size=s.relay_batch_size,
                idle_poll_seconds=s.relay_idle_poll_seconds,
                gather_seconds=s.relay_gather_seconds,
                destination=s.topic(d.name),
            )
            if d.handlers:
                svc.subscriber = Subscriber(
                    d.name,
                    svc.db,
                    dict(d.handlers),  # a copy: replacing a handler at run time stays local
                    self.clock,
                    s,
                    attempts=s.consumer_max_attempts,
                    backoff_seconds=s.consumer_backoff_seconds,
                    batch_handlers=dict(d.batch_handlers),
                )
                if self.bus is not None:
                    self.bus.subscribe(svc.subscriber, d.consumes_from)
                else:
                    svc.consumer = KafkaConsumerRunner(svc.subscriber, s, d.consumes_from, self.kafka_publisher)
            # every service runs the kernel's retention job beside its own
            jobs = {**d.jobs, RETENTION_JOB: retention_job}
            svc.scheduler = Scheduler(
                svc.db,
                jobs,
                self.clock,
                batch_handlers=dict(d.batch_jobs),
                poll_seconds=s.scheduler_poll_seconds,
                settings=s,
            )

    def service(self, name: str) -> ServiceRuntime:
        return self.services[name]

    async def start(self) -> None:
        for svc in self.services.values():
            if self.migrate_on_start:
                await migrate(self.settings, svc.definition)
            else:
                await require_head(self.settings, svc.definition)
            for hook in svc.definition.on_startup:
                await hook(svc)
        if not self.workers:
            return
        for svc in self.services.values():
            async with svc.db.transaction() as session:
                await schedule_retention(session, self.clock.now(), self.settings)
        if self.kafka_publisher is not None:
            self._tasks.append(asyncio.create_task(self._ensure_topics()))
        self._tasks.append(asyncio.create_task(self._sample_metrics_every_interval(), name="metrics-sampler"))
        for svc in self.services.values():
            if svc.relay:
                self._tasks.append(asyncio.create_task(svc.relay.run(self._stop), name=f"{svc.name}-relay"))
            if svc.consumer:
                self._tasks.append(asyncio.create_task(svc.consumer.run(self._stop), name=f"{svc.name}-consumer"))
            if svc.scheduler:
                self._tasks.append(asyncio.create_task(svc.scheduler.run(self._stop), name=f"{svc.name}-scheduler"))

    async def _ensure_topics(self) -> None:
        try:
            await ensure_topics(
                self.settings,
                list(self.services) + [src for svc in self.services.values() for src in svc.definition.consumes_from],
                timeout=3600,
            )
        except Exception as exc:  # the relay keeps retrying; readiness reports Kafka
            log.error("could not create topics", extra={"error": repr(exc)[:300]})

    async def sample_metrics(self) -> None:
        """Refreshes the live gauges: each service's unpublished outbox rows (one COUNT query) and each
        Kafka consumer's lag per topic (from the client's state: no broker round trip)."""
        for svc in self.services.values():
            try:
                async with svc.db.transaction() as session:
                    metrics.OUTBOX_PENDING.labels(svc.name).set(await pending_count(session))
            except Exception as exc:  # the database is away: readiness says so; the gauge keeps its value
                log.debug("outbox backlog not sampled", extra={"service": svc.name, "error": repr(exc)[:200]})
            if svc.consumer is not None:
                for topic, behind in (await svc.consumer.lag()).items():
                    metrics.CONSUMER_LAG.labels(svc.name, topic).set(behind)

    async def _sample_metrics_every_interval(self) -> None:
        while not self._stop.is_set():
            try:
                await self.sample_metrics()
            except Exception as exc:  # a consumer mid-restart: the next tick samples again
                log.warning("live gauges not sampled", extra={"error": repr(exc)[:300]})
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=self.settings.metrics_interval_seconds)

    async def stop(self) -> None:
        self._stop.set()
        if self._tasks:
            done, pending = await asyncio.wait(self._tasks, timeout=10)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        self._tasks.clear()
        if self.kafka_publisher is not None:
            await self.kafka_publisher.close()
        for svc in self.services.values():
            await svc.db.dispose()
