"""Delayed work in PostgreSQL (Kafka cannot delay delivery): rows with `due_at`, claimed with
FOR UPDATE SKIP LOCKED so several schedulers may run and each job runs once. A job handler runs in
the claiming transaction and typically writes an outbox event, so "announced" and "done" commit
together. A failing job is retried later with backoff, without blocking the others.

A pass claims up to `batch_size` due jobs (1,000) in one transaction. A kind with a batch job
handler (`BATCH_JOBS` of a service) gets all its claimed jobs at once and writes their effects
set-based; if it fails, its jobs run one by one (each in its own savepoint), so only a faulty job is
retried. A crash before the commit leaves the whole pass undone: the next pass claims it again."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import metrics
from pena.clock import Clock
from pena.db import Database, insert_rows
from pena.notify import listen, wait_any
from pena.settings import Settings
from pena.tables import scheduled_jobs

log = logging.getLogger("pena.scheduler")
NOTIFY_CHANNEL = "pena_jobs"


@dataclass(frozen=True)
class Job:
    id: int
    kind: str
    key: str
    due_at: datetime
    payload: dict[str, Any]
    attempts: int
    settings: Settings | None = None  # the running service's settings (e.g. a grace period changed since)


JobHandler = Callable[[AsyncSession, Job, Clock], Awaitable[None]]
# the set-based form of a job handler: same effects as the job handler on each job in turn, with a
# few statements for the whole list
BatchJobHandler = Callable[[AsyncSession, list[Job], Clock], Awaitable[None]]


def job_row(*, kind: str, key: str, due_at: datetime, payload: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"kind": kind, "job_key": key, "due_at": due_at, "payload": payload or {}}


async def schedule_jobs(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Stores jobs (from `job_row`) in one statement, once per key (idempotent). Returns the keys
    that were new."""
    if not rows:
        return set()
    return set(await insert_rows(session, scheduled_jobs, rows, skip_conflicts=True, returning="job_key"))


async def schedule_job(
    session: AsyncSession, *, kind: str, key: str, due_at: datetime, payload: dict[str, Any] | None = None
) -> bool:
    """Stores a job once per key (idempotent). Returns False when the key already existed."""
    return bool(await schedule_jobs(session, [job_row(kind=kind, key=key, due_at=due_at, payload=payload)]))


async def wake_schedulers(session: AsyncSession) -> None:
    """Running schedulers look for due jobs as soon as this transaction commits, not at their next
    poll: for jobs someone waits on (an import just uploaded)."""
    await session.execute(text(f"NOTIFY {NOTIFY_CHANNEL}"))


async def lock_jobs(session: AsyncSession, keys: list[str]) -> None:
    """Locks these jobs' rows first. A use case that changes rows a job handler also changes calls this
    before locking them, so both take locks in the scheduler's order (job, then its rows) and cannot
    deadlock; a job being run right now is waited for, a pending one is then skipped by schedulers."""
    await session.execute(
        select(scheduled_jobs.c.id)
        .where(scheduled_jobs.c.job_key.in_(keys))
        .order_by(scheduled_jobs.c.id)
        .with_for_update()
    )


async def cancel_job(session: AsyncSession, key: str, now: datetime) -> None:
    """Marks a pending job done without running it (e.g. the survey arrived before the overdue time)."""
    await cancel_jobs(session, [key], now)


async def cancel_jobs(session: AsyncSession, keys: list[str], now: datetime) -> None:
    """`cancel_job` for many keys in one statement (a chunk of imported surveys)."""
    if not keys:
        return
    await session.execute(
        update(scheduled_jobs)
        .where(and_(scheduled_jobs.c.job_key.in_(keys), scheduled_jobs.c.done_at.is_(None)))
        .values(done_at=now, last_error="cancelled")
    )


class Scheduler:
    def __init__(
        self,
        db: Database,
        handlers: dict[str, JobHandler],
        clock: Clock,
        *,
        batch_handlers: dict[str, BatchJobHandler] | None = None,
        batch_size: int = 1000,
        poll_seconds: float = 1.0,
        retry_after: timedelta = timedelta(minutes=1),
        settings: Settings | None = None,
    ) -> None:
        self.settings = settings
        self.db = db
        self.handlers = handlers
        self.batch_handlers = batch_handlers or {}
        self.clock = clock
        self.batch_size = batch_size
        self.poll_seconds = poll_seconds
        self.retry_after = retry_after
        self._wake = asyncio.Event()

    async def run_once(self) -> int:
        """Claims and runs one batch of due jobs. Returns how many were claimed."""
        now = self.clock.now()
        async with self.db.transaction() as session:
            # claimed and marked done in one statement (one row version per job, one round trip); a job
            # that fails below is put back (done_at cleared), and a crash before the commit undoes both
            claim = (
                select(scheduled_jobs.c.id)
                .where(
                    scheduled_jobs.c.done_at.is_(None),
                    scheduled_jobs.c.due_at <= now,
                    scheduled_jobs.c.kind.in_(sorted(self.handlers.keys() | self.batch_handlers.keys())),
                )
                .order_by(scheduled_jobs.c.due_at)
                .limit(self.batch_size)
                .with_for_update(skip_locked=True)
            )
            rows = (
                await session.execute(
                    update(scheduled_jobs)
                    .where(scheduled_jobs.c.id.in_(claim.scalar_subquery()))
                    .values(done_at=now, attempts=scheduled_jobs.c.attempts + 1)
                    .returning(
                        scheduled_jobs.c.id,
                        scheduled_jobs.c.kind,
                        scheduled_jobs.c.job_key,
                        scheduled_jobs.c.due_at,
                        scheduled_jobs.c.payload,
                        scheduled_jobs.c.attempts,
                    )
                )
            ).all()
            by_kind: dict[str, list[Job]] = {}
            # in due order, as claimed (RETURNING gives no order)
            for id_, kind, key, due_at, payload, attempts in sorted(rows, key=lambda r: (r[3], r[0])):
                by_kind.setdefault(kind, []).append(Job(id_, kind, key, due_at, payload, attempts - 1, self.settings))
            failed: list[tuple[Job, str]] = []
            for kind, jobs in by_kind.items():
                if kind in self.batch_handlers and await self._run_batch(session, kind, jobs):
                    metrics.JOBS_RUN.labels(kind, "done").inc(len(jobs))
                    continue
                for job in jobs:
                    error = await self._run_one(session, job)
                    if error is not None:
                        failed.append((job, error))
            for job, error in failed:
                backoff = self.retry_after * min(2**job.attempts, 64)
                await session.execute(
                    update(scheduled_jobs)
                    .where(scheduled_jobs.c.id == job.id)
                    .values(done_at=None, last_error=error, due_at=now + backoff)
                )
        return len(rows)

    async def _run_batch(self, session: AsyncSession, kind: str, jobs: list[Job]) -> bool:
        """All claimed jobs of a kind through its batch handler, in one savepoint. False when it failed
        (rolled back to the savepoint: the caller runs the jobs one by one)."""
        try:
            async with session.begin_nested():
                await self.batch_handlers[kind](session, jobs, self.clock)
            return True
        except Exception as exc:
            log.warning(
                "scheduled batch failed; running its jobs one by one", extra={"kind": kind, "error": repr(exc)[:300]}
            )
            return False

    async def _run_one(self, session: AsyncSession, job: Job) -> str | None:
        """One job in its own savepoint (its failure does not undo the others). Returns the error."""
        single = self.handlers.get(job.kind)
        try:
            async with session.begin_nested():
                if single is not None:
                    await single(session, job, self.clock)
                else:
                    await self.batch_handlers[job.kind](session, [job], self.clock)
            metrics.JOBS_RUN.labels(job.kind, "done").inc()
            return None
        except Exception as exc:
            log.warning("scheduled job failed", extra={"job_key": job.key, "error": repr(exc)[:300]})
            metrics.JOBS_RUN.labels(job.kind, "failed").inc()
            return repr(exc)[:500]

    async def drain(self) -> int:
        total = 0
        while (n := await self.run_once()) > 0:
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        listener = asyncio.create_task(listen(self.db, NOTIFY_CHANNEL, self._wake, stop))
        try:
            while not stop.is_set():
                self._wake.clear()  # before claiming: a wake-up during this pass makes the next one immediate
                try:
                    claimed = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # database away: try again shortly
                    log.warning("scheduler pass failed", extra={"error": repr(exc)[:300]})
                    claimed = 0
                # a pass that ran jobs is followed by another at once: a job may have scheduled due
                # follow-ups (the participants import, its next chunk); sleep only when nothing was due
                if claimed == 0:
                    await wait_any(stop, self._wake, self.poll_seconds)
        finally:
            listener.cancel()
