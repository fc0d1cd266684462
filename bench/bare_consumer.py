"""The bare consumer the pipeline and catch-up benchmarks measure the services against: a plain
aiokafka consumer on one topic (manual offset commits, read_committed, from the earliest offset) and
a plain asyncpg connection to the run's `bare` database, with none of the kernel's code. Each
benchmark passes what it writes for a fetched batch of records."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaConsumer, ConsumerRecord

from bench.common import asyncpg_dsn
from pena.db import ensure_database
from pena.kafka import connection_options
from pena.settings import Settings

Records = list[ConsumerRecord[bytes, bytes]]


async def bare_connection(settings: Settings) -> asyncpg.Connection:
    """A connection to the run's `bare` database (created when missing)."""
    await ensure_database(settings.service_database_url("bare"))
    return await asyncpg.connect(asyncpg_dsn(settings, "bare"))


async def consume(
    settings: Settings,
    *,
    service: str,
    group: str,
    expected: int,
    max_records: int,
    write: Callable[[Records], Awaitable[None]],
) -> tuple[float, float]:
    """Consumes `service`'s topic from the start in consumer group `<namespace>.<group>`: `write`
    gets each fetched batch (all partitions together), then the offsets are committed. Returns the
    seconds from partition assignment until `expected` records were written and committed, and this
    process's CPU seconds over the same span (`time.process_time`: steadier than rates on a shared
    machine)."""
    consumer = AIOKafkaConsumer(
        settings.topic(service),
        **connection_options(settings),
        group_id=f"{settings.topic_namespace}.{group}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        isolation_level="read_committed",
        max_poll_records=max_records,
    )
    await consumer.start()
    try:
        stored, started, cpu = 0, None, 0.0
        while stored < expected:
            batches = await consumer.getmany(timeout_ms=500, max_records=max_records)
            if started is None and consumer.assignment():
                started, cpu = time.perf_counter(), time.process_time()
            records = [record for records in batches.values() for record in records]
            if not records:
                continue
            await write(records)
            await consumer.commit()
            stored += len(records)
        assert started is not None
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        await consumer.stop()
