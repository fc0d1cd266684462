"""Retention of the kernel's bookkeeping rows, as a scheduled job every service runs (the runtime
registers it and schedules the first run when it starts its workers): published outbox rows, inbox
rows and idempotency keys older than their settings are deleted in bounded batches.

- `PENA_OUTBOX_RETENTION` (default 7 days after publication): published events are on Kafka already.
- `PENA_INBOX_RETENTION` (default 30 days): an inbox row is what makes a redelivered event a no-op,
  so it must outlive every redelivery: keep it longer than the topics' retention on Kafka.
- `PENA_IDEMPOTENCY_TTL` (default 24 h): past it a key behaves as new anyway (pena.idempotency).

A run deletes at most `PENA_RETENTION_BATCH_SIZE` rows per table (a short transaction, no long
locks); when a table had more, the next run is due at once, otherwise after `PENA_RETENTION_INTERVAL`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock
from pena.db import settings_of
from pena.ids import new_id
from pena.queries import purge_older_than
from pena.scheduler import Job, schedule_job
from pena.settings import Settings

log = logging.getLogger("pena.retention")
RETENTION_JOB = "pena.retention"
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def retention_ages(settings: Settings) -> dict[str, timedelta]:
    return {
        "outbox": settings.outbox_retention,
        "inbox": settings.inbox_retention,
        "idempotency_keys": settings.idempotency_ttl,
    }


async def purge(session: AsyncSession, settings: Settings) -> dict[str, int]:
    """One bounded batch per table; returns the rows deleted per table."""
    return {
        table: await purge_older_than(session, table, age, settings.retention_batch_size)
        for table, age in retention_ages(settings).items()
    }


def _slot(now: datetime, settings: Settings) -> datetime:
    """The start of the retention interval `now` falls in: the key of that interval's one run."""
    interval = settings.retention_interval
    return _EPOCH + (now - _EPOCH) // interval * interval


async def schedule_retention(session: AsyncSession, now: datetime, settings: Settings) -> bool:
    """Schedules the current interval's run, once per interval however many replicas start (the job
    key names the interval). Returns False when it was there already."""
    slot = _slot(now, settings)
    return await schedule_job(session, kind=RETENTION_JOB, key=f"{RETENTION_JOB}:{slot.isoformat()}", due_at=now)


async def retention_job(session: AsyncSession, job: Job, clock: Clock) -> None:
    """The scheduled job: one batch per table, then the next run (at once while a table had more)."""
    settings = job.settings or settings_of(session)
    deleted = await purge(session, settings)
    now = clock.now()
    if any(n >= settings.retention_batch_size for n in deleted.values()):
        await schedule_job(session, kind=RETENTION_JOB, key=f"{RETENTION_JOB}:more:{new_id()}", due_at=now)
    else:
        following = _slot(now, settings) + settings.retention_interval
        await schedule_job(
            session, kind=RETENTION_JOB, key=f"{RETENTION_JOB}:{following.isoformat()}", due_at=following
        )
    if any(deleted.values()):
        log.info("retention deleted old rows", extra={"deleted": deleted})
