"""Across services on the real Kafka broker: training.completed published by the (stand-in) training
service through its outbox reaches monev; redelivered (the relay publishes it again) it still makes one
task; the scheduler worker announces the backlog and monev's events leave on its own topic."""

from __future__ import annotations

import functools
from datetime import datetime

import pytest

from pena.clock import ManualClock
from pena.kafka import ensure_topics
from services.monev import queries
from tests.monev.support import WIB, announce_completions, completion, in_monev, monev, register, tasks
from tests.privacy import sixteen_digit_numbers
from tests.support import (
    eventually,
    mark_unpublished,
    outbox_events,
    participants_publisher,
    read_topic,
    training_publisher,
)

pytestmark = pytest.mark.kafka


async def test_completion_over_kafka_redelivered_makes_one_task_announced_once(make_runtime, settings) -> None:
    await ensure_topics(settings, ["participants", "training", "monev"])
    clock = ManualClock(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
    runtime = await make_runtime(
        [training_publisher, participants_publisher, monev], bus="kafka", workers=True, clock=clock
    )
    completed_at = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)

    await register(runtime, "p-k", income=900_000, household_size=3, drain=False)

    async def has_baseline() -> bool:
        row = await in_monev(runtime, lambda s: queries.baseline(s, "p-k"))
        return row is not None and row.baseline_monthly_income == 900_000

    await eventually(has_baseline, what="participant.registered consumed by monev")

    async def task_for(batch_id: str) -> bool:
        return any(t.batch_id == batch_id for t in await tasks(runtime))

    await announce_completions(runtime, completion("p-k", completed_at), drain=False)
    await eventually(lambda: task_for("batch-1"), what="task from training.completed")

    # the relay publishes the same CloudEvent twice more; a later event with the same key (same partition)
    # tells us the redelivery was consumed before it
    for marker in ("batch-2", "batch-3"):
        await mark_unpublished(runtime, "training")
        await announce_completions(runtime, completion("p-k", completed_at, batch_id=marker), drain=False)
        await eventually(functools.partial(task_for, marker), what=f"task for {marker}")

    stored = await tasks(runtime)
    assert sorted(t.batch_id for t in stored) == ["batch-1", "batch-2", "batch-3"]

    async def all_due() -> bool:
        return {t.status for t in await tasks(runtime)} == {"due"}

    await eventually(all_due, what="the scheduler worker announcing the backlog")

    records = await read_topic(settings.kafka_bootstrap, settings.topic("monev"), expect=6)
    kinds = sorted(r["value"]["type"].rsplit(".", 2)[-2] for r in records)
    assert kinds == ["due"] * 3 + ["scheduled"] * 3
    assert {r["key"] for r in records} == {b"p-k"}
    due_tasks = sorted(r["value"]["data"]["task_id"] for r in records if r["value"]["type"].endswith("due.v1"))
    assert due_tasks == sorted(t.id for t in stored)  # each task announced once
    assert not any(sixteen_digit_numbers(str(r["value"])) for r in records)
    # the participant's NIK token stays with the registry and monev's own store
    assert not any("t" * 64 in str(r["value"]) for r in records)
    assert len(await outbox_events(runtime, "monev", "monev.due")) == 3
    assert len(await outbox_events(runtime, "monev", "monev.scheduled")) == 3
