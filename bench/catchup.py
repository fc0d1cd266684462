"""Catch-up of the participant.* consumers: a backlog of N `participant.registered` events on the
participants topic, then each consumer of it (training, monev, graduation: the kernel's
KafkaConsumerRunner with the service's batch handler, one at a time, each alone on the machine) is
started and timed from partition assignment until its inbox holds every event; against a bare
aiokafka consumer in the same run writing the same rows (inbox row + read-model upsert with the
newer-version rule) with asyncpg executemany per fetched batch, one transaction per batch. For
reference, training once more with its batch handlers switched off (one transaction per event, as
before the batch handlers).

The issue: on the four-process deployment training started behind ~21,000 registrations and had not
reached the newest within 60 s (under ~350 events/s). No ratio target: reported.

python -m bench.catchup [--full]   (5,000 events; --full 20,000)
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import UTC, datetime

import asyncpg
from aiokafka import AIOKafkaProducer

from bench.bare_consumer import Records, bare_connection, consume
from bench.common import (
    REPORTED,
    Ratio,
    Result,
    asyncpg_dsn,
    bench_settings,
    delete_topics,
    drop_databases,
    main_for,
    new_namespace,
)
from pena.clock import SystemClock
from pena.contracts import BY_NAME, ParticipantRegistered
from pena.definition import ServiceDefinition
from pena.envelope import CONTENT_TYPE, make_event
from pena.kafka import connection_options, ensure_topics
from pena.runtime import Runtime
from pena.settings import Settings
from services.graduation.app import definition as graduation
from services.monev.app import definition as monev
from services.training.app import definition as training

REGISTERED = BY_NAME["participant.registered"]
BARE_TABLES = """
CREATE TABLE IF NOT EXISTS b_inbox (event_id text PRIMARY KEY, event_type text NOT NULL,
                                    processed_at timestamptz NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS b_view (participant_id text PRIMARY KEY, version int NOT NULL, status text,
                                   region_code text, updated_at timestamptz NOT NULL);
"""
BARE_UPSERT = """
INSERT INTO b_view VALUES ($1, $2, $3, $4, $5) ON CONFLICT (participant_id) DO UPDATE
SET version = EXCLUDED.version, status = EXCLUDED.status, region_code = EXCLUDED.region_code,
    updated_at = EXCLUDED.updated_at WHERE b_view.version < EXCLUDED.version
"""


def _registered(i: int, now: datetime) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    pid = f"cp{i}"
    payload = ParticipantRegistered(
        participant_id=pid,
        version=1,
        nik_token=uuid.uuid4().hex * 2,
        registered_at=now,
        region_code="3171010001",
        sex="F",
        birth_year=1985,
        business_field="culinary",
        household_size=4,
        baseline_monthly_income=1_500_000,
        status="active",
    )
    event = make_event(
        event_type=REGISTERED.type,
        source="/pena/participants",
        subject=pid,
        time=now,
        data=payload.model_dump(mode="json"),
        dataschema=REGISTERED.dataschema,
    )
    headers = [("content-type", CONTENT_TYPE.encode()), ("ce_type", event.type.encode()), ("ce_id", event.id.encode())]
    return event.to_bytes(), pid.encode(), headers


async def _produce(settings: Settings, count: int) -> None:
    producer = AIOKafkaProducer(**connection_options(settings), enable_idempotence=True, linger_ms=5)
    await producer.start()
    try:
        now = datetime.now(UTC)
        futures = []
        for i in range(count):
            value, key, headers = _registered(i, now)
            futures.append(await producer.send(settings.topic("participants"), value=value, key=key, headers=headers))
        await asyncio.gather(*futures)
    finally:
        await producer.stop()


async def _bare(settings: Settings, expected: int) -> tuple[float, float]:
    """Parse, upsert the read-model row and the inbox row per fetched batch, commit offsets."""
    conn = await bare_connection(settings)
    await conn.execute(BARE_TABLES)

    async def write(records: Records) -> None:
        events = [json.loads(r.value or b"{}") for r in records]
        now = datetime.now(UTC)
        async with conn.transaction():
            await conn.executemany(
                "INSERT INTO b_inbox (event_id, event_type) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(e["id"], e["type"]) for e in events],
            )
            await conn.executemany(
                BARE_UPSERT,
                [
                    (d["participant_id"], d["version"], d["status"], d["region_code"], now)
                    for d in (e["data"] for e in events)
                ],
            )

    try:
        return await consume(
            settings, service="participants", group="bare", expected=expected, max_records=500, write=write
        )
    finally:
        await conn.close()


async def _service(
    settings: Settings, definition: ServiceDefinition, expected: int, *, batched: bool = True
) -> tuple[float, float]:
    """One consumer alone from the start of the topic: seconds from assignment to its inbox holding
    every event, and this process's CPU seconds over them (the consumer's, beside a count query
    every 0.1 s)."""
    runtime = Runtime(settings, [definition], clock=SystemClock(), bus="kafka", workers=False)
    await runtime.start()  # migrates (and seeds graduation); only the consumer below runs
    svc = runtime.service(definition.name)
    assert svc.consumer is not None
    assert svc.subscriber is not None
    if not batched:
        svc.subscriber.batch_handlers = {}
    conn = await asyncpg.connect(asyncpg_dsn(settings, definition.name))
    stop = asyncio.Event()
    task = asyncio.create_task(svc.consumer.run(stop))
    try:
        await svc.consumer.assigned.wait()
        started, cpu = time.perf_counter(), time.process_time()
        deadline = time.monotonic() + 3600
        while (n := await conn.fetchval("SELECT count(*) FROM inbox")) < expected:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{definition.name}: only {n} of {expected} events")
            await asyncio.sleep(0.1)
        return time.perf_counter() - started, time.process_time() - cpu
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=30)
        await conn.close()
        await runtime.stop()


async def run(full: bool) -> Result:
    count = 20_000 if full else 5_000
    ns = new_namespace()
    services = {"training": training, "monev": monev, "graduation": graduation}
    seconds: dict[str, tuple[float, float]] = {}  # wall and CPU seconds
    try:
        settings = bench_settings(ns)
        await ensure_topics(settings, ["participants", "training", "monev", "graduation"])
        await _produce(settings, count)
        seconds["bare"] = await _bare(settings, count)
        for name, definition in services.items():
            seconds[name] = await _service(settings, definition, count)
        # one by one, as before the batch handlers (own namespace: own topic, databases, consumer group)
        single = bench_settings(ns + "s")
        await ensure_topics(single, ["participants", "training", "monev", "graduation"])
        await _produce(single, count)
        seconds["training one by one"] = await _service(single, training, count, batched=False)
    finally:
        await drop_databases(settings, ["bare", *services])
        await drop_databases(bench_settings(ns + "s"), ["training"])
        await delete_topics(settings)
        await delete_topics(bench_settings(ns + "s"))
    rates = {name: count / s for name, (s, _) in seconds.items()}
    cpu = {name: c / count * 1e6 for name, (_, c) in seconds.items()}  # us per event
    slowest = min(services, key=lambda n: rates[n])
    figures = {
        "bare aiokafka, inbox + upsert, executemany (baseline)": (
            f"{rates['bare']:,.0f} events/s (this process's CPU {cpu['bare']:.0f} us per event)"
        )
    }
    figures |= {
        (f"{name} consumer" if name in services else "training, batch handlers off (a transaction per event)"): (
            f"{rates[name]:,.0f} events/s ({seconds[name][0]:.1f}s; CPU {cpu[name]:.0f} us per event),"
            f" {rates[name] / rates['bare']:.2f} of bare"
        )
        for name in [*services, "training one by one"]
    }
    return Result(
        name="catchup",
        size=f"{count:,} participant.registered events behind, 3 partitions, each consumer alone",
        figures=figures,
        ratio=rates[slowest] / rates["bare"],
        target=REPORTED,
        notes=[f"ratio = the slowest consumer ({slowest}) / bare; no target in the issue"],
        extra=[Ratio(f"catchup {name}", rates[name] / rates["bare"], None, f"{name} / bare") for name in services],
    )


if __name__ == "__main__":
    main_for(run, __doc__ or "")
