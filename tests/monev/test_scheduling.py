"""Follow-up tasks from training.completed on real PostgreSQL: one task per (participant, batch, wave)
however often the completion is delivered, calendar-month due dates, due/overdue announced once even
with two schedulers, backfilled history due at once."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select, update

from pena.clock import ManualClock
from pena.consumer import check_provenance, deliver, deliver_records, event_context, parse_event, validate_payload
from pena.contracts import MonevDue, MonevScheduled
from pena.envelope import CloudEvent
from pena.outbox import outbox_row
from pena.tables import audit_log, outbox, scheduled_jobs
from services.monev.models import FacilitatorRegion
from services.monev.settings import get_monev_settings
from tests.monev.support import WIB, announce_completions, completion, in_monev, monev, register, scheduler, tasks
from tests.support import audit_rows, mark_unpublished, outbox_events, participants_publisher, training_publisher


async def stored_monev_events(runtime, name: str) -> list[tuple[Any, CloudEvent, Any]]:
    """Every `name` event in monev's outbox as (row, its CloudEvent, its validated payload), each checked
    as a consumer would check it (a CloudEvent from monev's topic, its payload against the contract)."""
    async with runtime.service("monev").db.transaction() as session:
        rows = (await session.execute(select(outbox).where(outbox.c.event_name == name))).all()
    settings = runtime.service("monev").subscriber.settings
    origin = f"{runtime.settings.topic('monev')}/0/1"
    found = []
    for row in rows:
        event = parse_event(json.dumps(row.envelope))
        check_provenance(settings, event, origin)
        found.append((row, event, validate_payload(event)))
    return found


async def test_a_completion_delivered_three_times_creates_one_task(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, monev], clock=clock)
    done = completion("p-1", datetime(2025, 12, 1, 9, 0, tzinfo=WIB))
    await announce_completions(runtime, done)  # first delivery
    for _ in range(2):  # the relay "crashed" before marking: the same CloudEvent is delivered again
        await mark_unpublished(runtime, "training")
        assert await runtime.service("training").relay.drain() == 1

    # and once more straight through the consumer path, same envelope
    envelope = (await outbox_events(runtime, "training", "training.completed"))[0]
    origin = f"{runtime.settings.topic('training')}/0/1"  # as the Kafka consumer names a record of training's topic
    assert await deliver(runtime.service("monev").subscriber, envelope, origin=origin) == "duplicate"
    # a second announcement of the same completion (a new event id) meets the unique constraint
    await announce_completions(runtime, done)

    stored = await tasks(runtime)
    assert len(stored) == 1
    assert (stored[0].participant_id, stored[0].batch_id, stored[0].wave) == ("p-1", "batch-1", "P3M")
    assert stored[0].status == "scheduled"
    assert len(await outbox_events(runtime, "monev", "monev.scheduled")) == 1
    scheduled = (await outbox_events(runtime, "monev", "monev.scheduled"))[0]
    assert scheduled["data"]["task_id"] == stored[0].id
    assert scheduled["subject"] == "p-1"


async def test_due_dates_are_calendar_months_on_the_business_calendar(make_runtime) -> None:
    runtime = await make_runtime([training_publisher, monev], clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))
    await announce_completions(
        runtime,
        completion("p-nov", datetime(2025, 11, 30, 10, 0, tzinfo=WIB)),
        # 05:00 WIB on 30 November is still 29 November in UTC: counted on the local calendar all the same
        completion("p-nov-early", datetime(2025, 11, 30, 5, 0, tzinfo=WIB)),
        completion("p-jan", datetime(2026, 1, 31, 14, 0, tzinfo=WIB)),
    )
    due = {t.participant_id: t.due_at.astimezone(WIB) for t in await tasks(runtime)}
    assert due["p-nov"] == datetime(2026, 2, 28, 10, 0, tzinfo=WIB)
    assert due["p-nov-early"].date() == date(2026, 2, 28)
    assert due["p-jan"] == datetime(2026, 4, 30, 14, 0, tzinfo=WIB)


async def test_each_wave_gets_its_own_task(make_runtime, monkeypatch, request) -> None:
    # monev's own settings, read from the environment variable a deployment sets
    monkeypatch.setenv("PENA_MONEV_DELAYS", '["P3M", "P6M"]')
    get_monev_settings.cache_clear()
    request.addfinalizer(get_monev_settings.cache_clear)  # runs before the variable is restored
    runtime = await make_runtime([training_publisher, monev], clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))
    done = completion("p-w", datetime(2025, 11, 30, 10, 0, tzinfo=WIB))
    await announce_completions(runtime, done)
    await announce_completions(runtime, done)
    stored = await tasks(runtime)
    assert [(t.wave, t.due_at.astimezone(WIB).date()) for t in stored] == [
        ("P3M", date(2026, 2, 28)),
        ("P6M", date(2026, 5, 30)),
    ]


async def test_two_schedulers_announce_each_task_once_then_overdue_once(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, monev], clock=clock)
    completed_at = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)
    await announce_completions(runtime, *(completion(f"p-{i}", completed_at) for i in range(40)))
    due_at = datetime(2026, 2, 28, 10, 0, tzinfo=WIB)
    first, second = scheduler(runtime, batch_size=5), scheduler(runtime, batch_size=5)

    clock.set(due_at - timedelta(seconds=1))
    assert await asyncio.gather(first.drain(), second.drain()) == [0, 0]
    assert len(await outbox_events(runtime, "monev", "monev.due")) == 0

    clock.set(due_at + timedelta(hours=1))
    claimed = await asyncio.gather(first.drain(), second.drain())
    assert sum(claimed) == 40
    assert len(await outbox_events(runtime, "monev", "monev.due")) == 40
    announced = {e["data"]["task_id"] for e in await outbox_events(runtime, "monev", "monev.due")}
    assert announced == {t.id for t in await tasks(runtime)}
    assert {t.status for t in await tasks(runtime)} == {"due"}
    assert await asyncio.gather(first.drain(), second.drain()) == [0, 0]  # nothing announced twice
    due_audits = await audit_rows(runtime, "monev", "monev.task.due")  # the system's status change, audited
    assert sorted(a.subject_id for a in due_audits) == sorted(announced)
    assert {a.actor for a in due_audits} == {"system"}

    # the grace period (P30D) passes: overdue, once each
    clock.set(due_at + timedelta(days=30, hours=2))
    await asyncio.gather(first.drain(), second.drain())
    assert len(await outbox_events(runtime, "monev", "monev.overdue")) == 40
    assert len(await outbox_events(runtime, "monev", "monev.due")) == 40
    assert {t.status for t in await tasks(runtime)} == {"overdue"}
    assert len(await audit_rows(runtime, "monev", "monev.task.overdue")) == 40


async def test_a_completion_from_2022_comes_due_at_once_with_a_full_grace_period(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 8, 0, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    await register(runtime, "p-old")
    await announce_completions(runtime, completion("p-old", datetime(2022, 6, 30, 10, 0, tzinfo=WIB)))
    [task] = await tasks(runtime)
    assert task.due_at.astimezone(WIB) == datetime(2022, 9, 30, 10, 0, tzinfo=WIB)

    assert await scheduler(runtime).drain() == 1
    [task] = await tasks(runtime)
    assert task.status == "due"
    assert task.announced_at == clock.now()
    # the grace period counts from the announcement, not from 2022 (else it would be overdue at once)
    assert task.overdue_at is not None
    assert task.overdue_at.astimezone(WIB).date() == date(2026, 2, 4)
    assert await scheduler(runtime).drain() == 0
    assert len(await outbox_events(runtime, "monev", "monev.due")) == 1
    assert len(await outbox_events(runtime, "monev", "monev.overdue")) == 0
    due_event = (await outbox_events(runtime, "monev", "monev.due"))[0]
    assert due_event["data"] == {
        "task_id": task.id,
        "participant_id": "p-old",
        "wave": "P3M",
        "kind": "follow_up",
        "due_at": due_event["data"]["due_at"],
    }
    assert datetime.fromisoformat(due_event["data"]["due_at"]) == task.due_at


async def test_a_fetched_run_of_completions_is_scheduled_set_based_with_each_events_own_context(
    make_runtime,
) -> None:
    """The Kafka consumer hands a run of completions to the batch handler: one task each (a repeated
    announcement in the same run included), assignees spread over the best-covering facilitators as
    if created one by one, and every event and audit row caused by its own completion."""
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, monev], clock=clock)
    at = datetime(2026, 1, 2, tzinfo=UTC)

    async def cover(session) -> None:
        for subject, prefix in [("fac-a", "1371"), ("fac-b", "1371"), ("fac-wide", "13")]:
            session.add(
                FacilitatorRegion(id=subject, subject=subject, region_prefix=prefix, created_by="t", created_at=at)
            )

    await in_monev(runtime, cover)
    done = [completion(f"p-{i}", datetime(2025, 12, 1, 9, 0, tzinfo=WIB)) for i in range(4)]
    await announce_completions(runtime, *done, done[0], drain=False)  # p-0 announced twice
    envelopes = await outbox_events(runtime, "training", "training.completed")
    sub = runtime.service("monev").subscriber
    topic = runtime.settings.topic("training")
    outcomes = await deliver_records(sub, [(json.dumps(e), f"{topic}/0/{i}") for i, e in enumerate(envelopes)])
    assert outcomes == ["processed"] * 5  # five distinct events; the repeat meets the unique constraint

    stored = await tasks(runtime)
    assert sorted(t.participant_id for t in stored) == ["p-0", "p-1", "p-2", "p-3"]
    assert Counter(t.assignee for t in stored) == {"fac-a": 2, "fac-b": 2}
    by_task = {t.id: t for t in stored}
    cause = {e["data"]["participant_id"]: e["id"] for e in envelopes[:4]}
    scheduled = await outbox_events(runtime, "monev", "monev.scheduled")
    assert len(scheduled) == 4
    for event in scheduled:
        task = by_task[event["data"]["task_id"]]
        assert event["subject"] == task.participant_id
        assert event["causationid"] == cause[task.participant_id]

    async def bookkeeping(session) -> tuple[list[str], list[tuple[str, str]]]:
        jobs = (await session.execute(select(scheduled_jobs.c.job_key))).scalars().all()
        audits = (
            await session.execute(
                select(audit_log.c.subject_id, audit_log.c.correlation_id).where(
                    audit_log.c.action == "monev.task.scheduled"
                )
            )
        ).all()
        return list(jobs), [tuple(a) for a in audits]

    jobs, audits = await in_monev(runtime, bookkeeping)
    assert sorted(jobs) == sorted(f"monev.due:{task_id}" for task_id in by_task)
    assert sorted(task_id for task_id, _ in audits) == sorted(by_task)
    # a completion announced outside any request correlates with itself
    correlation = {e["data"]["participant_id"]: e.get("correlationid", e["id"]) for e in envelopes[:4]}
    assert all(corr == correlation[by_task[task_id].participant_id] for task_id, corr in audits)


async def test_the_scheduled_events_written_in_sql_are_the_contract_s_in_each_completion_s_context(
    make_runtime,
) -> None:
    """New tasks, their due jobs, monev.scheduled events and audit rows are written in one SQL statement
    (queries.create_tasks: the envelope's constant part from `envelope_template`, the context ids per
    task, id, subject and data in SQL): every stored event is a valid CloudEvent from monev's topic
    whose payload validates against MonevScheduled and matches its task, with the same attributes as
    an event built by `outbox_row` in its completion's context; the job and audit rows as before."""
    clock = ManualClock(datetime(2026, 1, 5, 3, 4, 5, 678901, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, monev], clock=clock)
    await announce_completions(
        runtime,
        *(completion(f"p-{i}", datetime(2025, 11, 30, 10, 0, i, i * 1001, tzinfo=WIB)) for i in range(5)),
        drain=False,
    )
    envelopes = await outbox_events(runtime, "training", "training.completed")
    sub = runtime.service("monev").subscriber
    topic = runtime.settings.topic("training")
    outcomes = await deliver_records(sub, [(json.dumps(e), f"{topic}/0/{i}") for i, e in enumerate(envelopes)])
    assert outcomes == ["processed"] * 5
    cause = {e["data"]["participant_id"]: CloudEvent.model_validate(e) for e in envelopes}
    by_task = {t.id: t for t in await tasks(runtime)}
    async with runtime.service("monev").db.transaction() as session:
        jobs = {j.job_key: j for j in (await session.execute(select(scheduled_jobs))).all()}
    stored = await stored_monev_events(runtime, "monev.scheduled")
    assert len(stored) == len(by_task) == 5
    for row, event, scheduled in stored:
        assert isinstance(scheduled, MonevScheduled)
        task = by_task[scheduled.task_id]
        assert (
            scheduled.participant_id,
            scheduled.batch_id,
            scheduled.wave,
            scheduled.kind,
            scheduled.training_completed_at,
            scheduled.due_at,
        ) == (task.participant_id, task.batch_id, task.wave, task.kind, task.training_completed_at, task.due_at)
        assert row.event_id == event.id
        assert row.message_key == event.subject == task.participant_id
        with event_context(cause[task.participant_id]):
            reference = outbox_row("monev.scheduled", scheduled, subject=task.participant_id, time=clock.now())[1][
                "envelope"
            ]
        assert set(row.envelope) == set(reference)
        assert {k: v for k, v in row.envelope.items() if k not in ("id", "data")} == {
            k: v for k, v in reference.items() if k not in ("id", "data")
        }
        assert event.causationid == cause[task.participant_id].id
        job = jobs[f"monev.due:{task.id}"]
        assert (job.kind, job.due_at, job.payload) == (
            "monev.due",
            task.due_at,
            {"task_id": task.id, "grace": "P30D", "timezone": "Asia/Jakarta"},
        )
    assert len({row.event_id for row, _, _ in stored}) == 5
    audits = await audit_rows(runtime, "monev", "monev.task.scheduled")
    assert sorted(a.subject_id for a in audits) == sorted(by_task)
    for a in audits:
        task = by_task[a.subject_id]
        assert (a.actor, a.outcome, a.correlation_id) == ("system", "ok", cause[task.participant_id].id)
        assert a.details == {"wave": "P3M", "kind": "follow_up", "auto_assigned": task.assignee is not None}
    assert all(
        t.status == "scheduled" and t.submission_version == 0 and t.created_at == clock.now() for t in by_task.values()
    )


async def test_the_due_events_written_in_sql_are_the_contract_s_and_carry_the_pass_context(make_runtime) -> None:
    """The due pass writes monev.due in one SQL statement (the envelope's constant part from the kernel's
    `envelope_template`, id, subject and data per task in SQL): every stored event is a valid CloudEvent
    from monev's topic whose payload validates against MonevDue, with the same attributes as an event
    built by `outbox_row` in the same context, a fresh id each, the outbox row's id and key matching."""
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, monev], clock=clock)
    await announce_completions(
        runtime, *(completion(f"p-{i}", datetime(2025, 11, 30, 10, 0, tzinfo=WIB)) for i in range(7))
    )
    clock.set(datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC))
    with event_context(CloudEvent(id="cause-1", source="/pena/x", type="t", time=clock.now(), correlationid="corr-1")):
        assert await scheduler(runtime).drain() == 7
        reference = outbox_row(
            "monev.due",
            MonevDue(task_id="t", participant_id="p", wave="P3M", due_at=clock.now()),
            subject="p",
            time=clock.now(),
        )[1]["envelope"]
    by_task = {t.id: t for t in await tasks(runtime)}
    stored = await stored_monev_events(runtime, "monev.due")
    assert len(stored) == 7
    for row, event, due in stored:
        assert isinstance(due, MonevDue)
        task = by_task[due.task_id]
        assert (due.participant_id, due.wave, due.kind, due.due_at) == (
            task.participant_id,
            "P3M",
            "follow_up",
            task.due_at,
        )
        assert row.event_id == event.id
        assert row.message_key == event.subject == task.participant_id
        assert set(row.envelope) == set(reference)
        assert {k: v for k, v in row.envelope.items() if k not in ("id", "subject", "data")} == {
            k: v for k, v in reference.items() if k not in ("id", "subject", "data")
        }
        assert (event.correlationid, event.causationid) == ("corr-1", "cause-1")
    assert len({row.event_id for row, _, _ in stored}) == 7
    audits = await audit_rows(runtime, "monev", "monev.task.due")
    assert sorted(a.subject_id for a in audits) == sorted(by_task)
    assert {(a.actor, a.outcome, a.correlation_id) for a in audits} == {("system", "ok", "corr-1")}
    assert all(a.details == {"wave": "P3M"} for a in audits)


async def test_a_due_job_run_before_its_task_s_time_counts_the_grace_period_from_the_due_time(make_runtime) -> None:
    """Cannot happen with the jobs monev schedules (a due job's time is its task's); if a job ever ran
    early, the overdue time (task and overdue job) counts from the task's due time, not from now."""
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, monev], clock=clock)
    await announce_completions(runtime, completion("p-early", datetime(2025, 11, 30, 10, 0, tzinfo=WIB)))
    [task] = await tasks(runtime)
    async with runtime.service("monev").db.transaction() as session:
        await session.execute(
            update(scheduled_jobs).where(scheduled_jobs.c.job_key == f"monev.due:{task.id}").values(due_at=clock.now())
        )
    assert await scheduler(runtime).drain() == 1
    [task] = await tasks(runtime)
    assert task.status == "due"
    expected = datetime(2026, 3, 30, 10, 0, tzinfo=WIB)  # due 28 February 10:00 WIB + P30D
    assert task.overdue_at == expected
    async with runtime.service("monev").db.transaction() as session:
        job = (
            await session.execute(select(scheduled_jobs).where(scheduled_jobs.c.job_key == f"monev.overdue:{task.id}"))
        ).one()
    assert job.due_at == expected
    assert job.done_at is None
