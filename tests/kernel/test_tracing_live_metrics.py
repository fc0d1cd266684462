"""The live gauges on the real PostgreSQL and Kafka, refreshed by the runtime's sampler (no /readyz is
ever called here: no app is built): `pena_outbox_pending` counts training's unpublished rows while its
relay is held and drops to 0 once they are sent; `pena_consumer_lag` counts the records monev has not
handled while its handlers are held and drops to 0 once they are."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from pena.clock import ManualClock
from pena.kafka import ensure_topics
from pena.outbox import OutboxMessage, Publisher
from tests.monev.support import WIB, announce_completions, completion, monev
from tests.support import eventually, participants_publisher, training_publisher

pytestmark = pytest.mark.kafka
EVENTS = 12


class HeldPublisher:
    """The relay's publisher, holding every batch until `release` is set."""

    def __init__(self, inner: Publisher) -> None:
        self.inner = inner
        self.release = asyncio.Event()

    async def publish(self, messages: list[OutboxMessage]) -> None:
        await self.release.wait()
        await self.inner.publish(messages)


def gauge(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_outbox_backlog_and_consumer_lag_are_sampled_live(make_runtime, settings) -> None:
    await ensure_topics(settings, ["participants", "training", "monev"])
    live = settings.model_copy(update={"metrics_interval_seconds": 0.1})
    runtime = await make_runtime(
        [training_publisher, participants_publisher, monev],
        bus="kafka",
        workers=True,
        clock=ManualClock(datetime(2026, 3, 10, 9, 0, tzinfo=WIB)),
        settings_=live,
    )
    relay = runtime.service("training").relay
    assert relay is not None
    held_relay = HeldPublisher(relay.publisher)
    relay.publisher = held_relay

    # monev's handlers of training.completed wait for the test (the consumer runner holds the same subscriber)
    handlers_may_run = asyncio.Event()
    subscriber = runtime.service("monev").subscriber
    assert subscriber is not None

    async def held(session: Any, delivery: Any) -> None:
        await handlers_may_run.wait()

    async def held_batch(session: Any, deliveries: Any) -> None:
        await handlers_may_run.wait()

    subscriber.handlers["training.completed"] = held
    subscriber.batch_handlers["training.completed"] = held_batch

    training_topic = settings.topic("training")

    async def lag() -> float | None:
        return gauge("pena_consumer_lag", consumer="monev", topic=training_topic)

    await eventually(lambda: _is(lag, 0), what="monev's consumer lag sampled at 0 before anything is sent")

    completed_at = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)
    await announce_completions(
        runtime, *(completion(f"p-{i}", completed_at, batch_id=f"b-{i}") for i in range(EVENTS)), drain=False
    )

    async def pending() -> float | None:
        return gauge("pena_outbox_pending", service="training")

    await eventually(lambda: _is(pending, EVENTS), what=f"{EVENTS} pending outbox rows while the relay is held")
    assert await lag() == 0  # nothing reached Kafka yet

    held_relay.release.set()
    await eventually(lambda: _is(pending, 0), what="no pending outbox rows once the relay sent them")
    await eventually(lambda: _is(lag, EVENTS), what=f"monev {EVENTS} records behind while its handlers are held")

    handlers_may_run.set()
    await eventually(lambda: _is(lag, 0), what="monev's lag back to 0 once the records are handled")


async def _is(read: Any, expected: float) -> bool:
    return bool(await read() == expected)
