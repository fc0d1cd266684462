"""In-process bus for single-process mode (`pena dev`): the outbox relays hand their rows to the
subscribed services' handlers directly, through the same idempotent `deliver()` path as Kafka, so
each delivery still gets inbox dedupe, retries, dead letters and the provenance check (an event type
only from its owner's outbox, with its owner's source: `pena.consumer.check_provenance`). A row is
marked published only after every subscriber has handled (or dead-lettered) it."""

from __future__ import annotations

from pena.consumer import INPROCESS_ORIGIN, Subscriber, deliver
from pena.outbox import OutboxMessage


class InProcessBus:
    def __init__(self) -> None:
        self.subscribers: list[tuple[Subscriber, set[str]]] = []

    def subscribe(self, sub: Subscriber, source_services: list[str]) -> None:
        """`sub` receives what the outboxes of `source_services` publish (like their Kafka topics)."""
        self.subscribers.append((sub, set(source_services)))

    async def publish(self, messages: list[OutboxMessage]) -> None:
        for message in messages:
            for sub, sources in self.subscribers:
                if message.service in sources:
                    await deliver(
                        sub, message.envelope, origin=f"{INPROCESS_ORIGIN}/{message.service}/{message.row_id}"
                    )
