"""Due-task scheduler on real PostgreSQL: due by the injected clock, claimed once across schedulers."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from pena.clock import ManualClock
from pena.durations import add_duration
from pena.scheduler import Scheduler, wake_schedulers
from pena.tables import scheduled_jobs
from tests.kernel import probe


async def announced(con) -> list[str]:
    async with con.db.transaction() as s:
        return list((await s.execute(select(probe.announcements.c.job_key))).scalars().all())


async def test_jobs_come_due_by_the_clock_and_run_once_across_two_schedulers(make_runtime) -> None:
    clock = ManualClock(datetime(2025, 11, 30, 9, 0, tzinfo=UTC))
    runtime = await make_runtime([probe.consumer], clock=clock)
    con = runtime.service("probe")
    completed_at = clock.now()
    due_at = add_duration(completed_at, "P3M")
    assert due_at == datetime(2026, 2, 28, 9, 0, tzinfo=UTC)  # 30 November + 3 months = end of February
    async with con.db.transaction() as s:
        for i in range(300):
            assert await probe.schedule(s, f"task-{i}", due_at)
        assert not await probe.schedule(s, "task-0", due_at)  # same key: stored once
    first = Scheduler(con.db, probe.consumer.jobs, clock, batch_size=20)
    second = Scheduler(con.db, probe.consumer.jobs, clock, batch_size=20)

    assert await asyncio.gather(first.drain(), second.drain()) == [0, 0]  # not due yet
    clock.set(due_at - timedelta(seconds=1))
    assert await first.drain() == 0
    clock.set(due_at)
    claimed = await asyncio.gather(first.drain(), second.drain())
    assert sum(claimed) == 300
    keys = await announced(con)
    assert sorted(keys) == sorted(f"task-{i}" for i in range(300))  # each exactly once
    clock.advance("P1D")
    assert await asyncio.gather(first.drain(), second.drain()) == [0, 0]


async def test_backfilled_job_from_2022_is_due_at_once(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 11, 28, tzinfo=UTC))
    runtime = await make_runtime([probe.consumer], clock=clock)
    con = runtime.service("probe")
    async with con.db.transaction() as s:
        await probe.schedule(s, "old", add_duration(datetime(2022, 6, 30, tzinfo=UTC), "P3M"))
    assert await Scheduler(con.db, probe.consumer.jobs, clock).drain() == 1
    assert await announced(con) == ["old"]


async def test_a_failing_job_is_retried_later_without_blocking_others(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    runtime = await make_runtime([probe.consumer], clock=clock)
    con = runtime.service("probe")
    calls = {"n": 0}

    async def flaky(session, job, clock_):
        if job.key == "bad" and calls["n"] == 0:
            calls["n"] += 1
            raise RuntimeError("temporary")
        await probe.announce(session, job, clock_)

    async with con.db.transaction() as s:
        await probe.schedule(s, "bad", clock.now())
        await probe.schedule(s, "good", clock.now())
    scheduler = Scheduler(con.db, {"probe.announce": flaky}, clock, retry_after=timedelta(minutes=1))
    assert await scheduler.run_once() == 2
    assert await announced(con) == ["good"]
    async with con.db.transaction() as s:
        row = (await s.execute(select(scheduled_jobs).where(scheduled_jobs.c.job_key == "bad"))).one()
    assert row.done_at is None
    assert row.attempts == 1
    assert "temporary" in row.last_error
    clock.advance(timedelta(minutes=2))
    assert await scheduler.run_once() == 1
    assert sorted(await announced(con)) == ["bad", "good"]
    async with con.db.transaction() as s:
        pending = (
            await s.execute(select(func.count()).select_from(scheduled_jobs).where(scheduled_jobs.c.done_at.is_(None)))
        ).scalar_one()
    assert pending == 0


async def test_a_running_scheduler_is_woken_by_a_commit_not_its_next_poll(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    runtime = await make_runtime([probe.consumer], clock=clock)
    con = runtime.service("probe")
    scheduler = Scheduler(con.db, probe.consumer.jobs, clock, poll_seconds=60)
    stop = asyncio.Event()
    running = asyncio.create_task(scheduler.run(stop))
    try:
        await asyncio.sleep(1.0)  # listening, past its first pass, now sleeping for a minute
        async with con.db.transaction() as s:
            await probe.schedule(s, "unwoken", clock.now())
        await asyncio.sleep(1.0)
        assert await announced(con) == []  # committed without a wake-up: waits for the poll
        async with con.db.transaction() as s:
            await probe.schedule(s, "woken", clock.now())
            await wake_schedulers(s)
        for _ in range(50):
            if len(await announced(con)) == 2:
                break
            await asyncio.sleep(0.1)
        assert sorted(await announced(con)) == ["unwoken", "woken"]
    finally:
        stop.set()
        await asyncio.wait_for(running, timeout=5)


async def _pending(con) -> dict[str, int]:
    async with con.db.transaction() as s:
        rows = (await s.execute(select(scheduled_jobs).where(scheduled_jobs.c.done_at.is_(None)))).all()
    return {row.job_key: row.attempts for row in rows}


async def test_a_batch_job_handler_gets_the_pass_and_a_failing_batch_runs_its_jobs_one_by_one(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    runtime = await make_runtime([probe.consumer], clock=clock)
    con = runtime.service("probe")
    keys = [f"k-{i}" for i in range(30)]
    async with con.db.transaction() as s:
        for key in keys:
            await probe.schedule(s, key, clock.now())
    batches: list[list[str]] = []
    single_failures = {"k-7": 1}

    async def batch(session, jobs, clock_):
        batches.append([job.key for job in jobs])
        for job in jobs:
            await probe.announce(session, job, clock_)
        if any(job.key == "k-7" for job in jobs):
            raise RuntimeError("one faulty job spoils the batch")

    async def single(session, job, clock_):
        if single_failures.get(job.key):
            single_failures[job.key] -= 1
            raise RuntimeError("still faulty")
        await probe.announce(session, job, clock_)

    scheduler = Scheduler(con.db, {"probe.announce": single}, clock, batch_handlers={"probe.announce": batch})
    assert await scheduler.run_once() == 30
    assert [sorted(b) for b in batches] == [sorted(keys)]  # the whole pass in one call
    # the batch was rolled back to its savepoint; one by one, only the faulty job failed
    assert sorted(await announced(con)) == sorted(k for k in keys if k != "k-7")
    assert await _pending(con) == {"k-7": 1}
    assert await scheduler.run_once() == 0  # retried later (backoff), not at once
    clock.advance(timedelta(minutes=2))
    assert await scheduler.run_once() == 1
    assert batches[-1] == ["k-7"]
    assert sorted(await announced(con)) == sorted(keys)  # each exactly once
    assert await _pending(con) == {}


async def test_a_crash_inside_a_batch_pass_leaves_nothing_and_the_next_pass_redoes_it(make_runtime) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    runtime = await make_runtime([probe.consumer], clock=clock)
    con = runtime.service("probe")
    async with con.db.transaction() as s:
        for i in range(50):
            await probe.schedule(s, f"c-{i}", clock.now())
    crash = {"on": True}

    async def batch(session, jobs, clock_):
        for job in jobs:
            await probe.announce(session, job, clock_)
        if crash["on"]:
            raise asyncio.CancelledError  # the process stopped mid-pass: nothing of it may commit

    scheduler = Scheduler(con.db, {}, clock, batch_handlers={"probe.announce": batch}, batch_size=20)
    try:
        await scheduler.run_once()
        raise AssertionError("the pass should have been interrupted")
    except asyncio.CancelledError:
        pass
    assert await announced(con) == []
    assert len(await _pending(con)) == 50
    crash["on"] = False
    assert await scheduler.drain() == 50  # three passes of at most 20; kinds with only a batch form run
    assert sorted(await announced(con)) == sorted(f"c-{i}" for i in range(50))
    assert await _pending(con) == {}
