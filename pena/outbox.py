"""Transactional outbox: a state change and the event announcing it commit together.

`emit()` inserts the envelope in the caller's transaction; the outbox table's trigger queues a NOTIFY
(delivered only on commit, so a rolled-back change wakes nobody and publishes nothing; of concurrent
writers only one notifies: pena.tables.OUTBOX_NOTIFY_SQL, and the relay claims again shortly after
each batch it publishes). The relay claims unpublished
rows with FOR UPDATE SKIP LOCKED (several relays may run) and marks them published in the same
statement, publishes them, then commits the mark. A crash or a failed publish before that commit
publishes again: consumers dedupe by event id (inbox).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import failpoints, metrics, telemetry
from pena.contracts import BY_NAME
from pena.db import Database, copy_rows
from pena.envelope import CloudEvent, make_envelope, service_source
from pena.notify import listen, wait_any
from pena.tables import OUTBOX_CHANNEL, outbox

log = logging.getLogger("pena.outbox")
NOTIFY_CHANNEL = OUTBOX_CHANNEL
# after publishing a batch smaller than batch_size, the relay claims again this much later (or after
# relay_gather_seconds, when longer) instead of waiting for a notification
BUSY_POLL_SECONDS = 0.01


@dataclass(frozen=True)
class OutboxMessage:
    row_id: int
    event_name: str
    key: str | None
    envelope: dict[str, Any]
    outbox_of: str | None = None
    """The service whose outbox held the row (set by its relay)."""

    @property
    def service(self) -> str:
        """The service whose topic the message goes on: the outbox's own service. A service can only
        publish on its own topic; consumers refuse there what another service owns (pena.consumer)."""
        return self.outbox_of or BY_NAME[self.event_name].service

    def event(self) -> CloudEvent:
        return CloudEvent.model_validate(self.envelope)


class Publisher(Protocol):
    async def publish(self, messages: list[OutboxMessage]) -> None:
        """Returns only when every message is durably accepted; raises otherwise."""


def outbox_row(
    name: str, payload: BaseModel, *, subject: str | None, time: datetime, key: str | None = None
) -> tuple[CloudEvent, dict[str, Any]]:
    """The event and its outbox row (`event_row`), built in the current event/request context. The
    payload is already a validated contract model and the envelope's attributes are the kernel's own,
    so the event beside the row is constructed, not validated again (tests/kernel/test_outbox_rows.py
    checks the row's envelope is the CloudEvent model's JSON form and its data the contract's)."""
    row = event_row(name, payload, subject=subject, time=time, key=key)
    return CloudEvent.model_construct(**{**row["envelope"], "time": time}), row


def outbox_rows(name: str, events: Sequence[tuple[BaseModel, str | None, datetime]]) -> list[dict[str, Any]]:
    """`event_row` for many events of one kind, (payload, subject, time) each, keyed by subject."""
    return [event_row(name, payload, subject=subject, time=time) for payload, subject, time in events]


async def emit_rows(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Writes outbox rows (from `outbox_row`) in one statement inside the caller's transaction (the
    table's trigger wakes the relay: OUTBOX_NOTIFY_SQL); a large batch through COPY (`copy_rows`)."""
    if not rows:
        return
    await copy_rows(session, outbox, rows)


async def emit(
    session: AsyncSession, name: str, payload: BaseModel, *, subject: str | None, time: datetime, key: str | None = None
) -> CloudEvent:
    """Writes one event into the outbox inside the caller's transaction."""
    event, row = outbox_row(name, payload, subject=subject, time=time, key=key)
    await emit_rows(session, [row])
    return event


def event_row(
    name: str, payload: BaseModel, *, subject: str | None, time: datetime, key: str | None = None
) -> dict[str, Any]:
    """The outbox row of an event, built in the current event/request context (correlation and
    causation ids are read now), for `emit_rows`; no CloudEvent model is made (batch writers make
    thousands). The Kafka key defaults to the subject (the participant id), so one family's events
    stay in order on one partition."""
    contract = BY_NAME[name]
    if not isinstance(payload, contract.payload):
        raise TypeError(f"{name} takes {contract.payload.__name__}, got {type(payload).__name__}")
    envelope = make_envelope(
        event_type=contract.type,
        source=service_source(contract.service),
        subject=subject,
        time=time,
        data=payload.model_dump(mode="json"),
        dataschema=contract.dataschema,
    )
    return {"event_id": envelope["id"], "event_name": name, "message_key": key or subject, "envelope": envelope}


def envelope_template(name: str, *, time: datetime) -> dict[str, Any]:
    """The envelope (outbox form) that every `name` event written now shares, built by `make_envelope`
    like any other: source, type, dataschema, time and the current context's correlation, causation and
    trace ids, without the per-event `id`, `subject` and `data`. For a set-based writer storing many events
    in one SQL statement (monev's due tasks): it adds those three per row (`template || jsonb_build_object
    ('id', ..., 'subject', ..., 'data', ...)`), so the envelope is still made here, once per statement,
    and only the payload is written in SQL (tests validate such stored events against their contract)."""
    contract = BY_NAME[name]
    envelope = make_envelope(
        event_type=contract.type,
        source=service_source(contract.service),
        subject=None,
        time=time,
        data={},
        dataschema=contract.dataschema,
    )
    return {key: value for key, value in envelope.items() if key not in ("id", "subject", "data")}


async def forget_published(session: AsyncSession, subject: str) -> int:
    """Erasure (UU PDP): deletes the already published outbox rows about `subject` (their payloads may
    hold the person's figures or family token until retention would delete them). Unpublished rows
    stay: they must still be delivered. Returns how many rows were deleted."""
    result = await session.execute(
        outbox.delete().where(outbox.c.published_at.is_not(None), outbox.c.envelope["subject"].astext == subject)
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


async def pending_count(session: AsyncSession) -> int:
    return int(
        (
            await session.execute(select(func.count()).select_from(outbox).where(outbox.c.published_at.is_(None)))
        ).scalar_one()
    )


# the relay's claim: the oldest unpublished rows no other relay holds, marked published in the same
# statement (the mark commits with the transaction, after the publish: OutboxRelay.run_once)
_CLAIM = """
    UPDATE outbox SET published_at = now()
    WHERE id IN (
        SELECT id FROM outbox WHERE published_at IS NULL ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
    )
    RETURNING id, event_name, message_key, envelope::text AS envelope
"""


class OutboxRelay:
    def __init__(
        self,
        db: Database,
        publisher: Publisher,
        *,
        service: str,
        batch_size: int = 500,
        idle_poll_seconds: float = 1.0,
        retry_seconds: float = 1.0,
        destination: str | None = None,
        gather_seconds: float = 0.0,
    ) -> None:
        self.db = db
        self.destination = destination or service  # the topic, named in the relay's send spans
        self.publisher = publisher
        self.service = service
        self.batch_size = batch_size
        self.idle_poll_seconds = idle_poll_seconds
        self.retry_seconds = retry_seconds
        self.gather_seconds = gather_seconds
        self._wake = asyncio.Event()

    async def run_once(self) -> int:
        """Claims, publishes and marks one batch. Returns how many rows were published.

        Claim and mark are one statement on the raw pool (`_CLAIM`: the rows are marked published and
        locked in a transaction that commits only after the publisher returned; a failed publish, or
        a crash before the commit, rolls the mark back and the rows go again), so a cycle is BEGIN,
        one UPDATE ... RETURNING, COMMIT, without an ORM session."""
        pool = await self.db.raw_pool()
        async with pool.acquire() as connection, connection.transaction():
            rows = await connection.fetch(_CLAIM, self.batch_size)
            if not rows:
                return 0
            messages = [
                OutboxMessage(r["id"], r["event_name"], r["message_key"], json.loads(r["envelope"]), self.service)
                for r in sorted(rows, key=lambda r: r["id"])  # RETURNING keeps no order
            ]
            # tracing on: a send span per event, continuing the trace the event was written in
            with telemetry.sending(self.destination, [m.envelope for m in messages]) as traced:
                if traced is not None:
                    messages = [dataclasses.replace(m, envelope=e) for m, e in zip(messages, traced, strict=True)]
                await self.publisher.publish(messages)
            failpoints.hit("relay.after_publish")
        metrics.OUTBOX_PUBLISHED.labels(self.service).inc(len(messages))
        return len(messages)

    async def drain(self) -> int:
        total = 0
        while (n := await self.run_once()) > 0:
            total += n
        return total

    async def run(self, stop: asyncio.Event) -> None:
        # LISTEN for commits that wrote outbox rows (reconnecting after a database restart)
        listener = asyncio.create_task(listen(self.db, NOTIFY_CHANNEL, self._wake, stop))
        try:
            while not stop.is_set():
                self._wake.clear()  # before claiming: a commit during this batch wakes the next one
                try:
                    published = await self.run_once()
                except asyncio.CancelledError:
                    raise
                except Exception as exc:  # broker or database down: rows stay unpublished, retry later
                    log.warning(
                        "outbox relay could not publish; will retry",
                        extra={"service": self.service, "error": repr(exc)[:300]},
                    )
                    metrics.OUTBOX_FAILURES.labels(self.service).inc()
                    await _sleep_or_stop(stop, self.retry_seconds)
                    continue
                if published == self.batch_size:
                    continue  # more waiting
                if published:
                    # rows came: writers that committed beside the one that notified did not notify
                    # (pena.tables.OUTBOX_NOTIFY_SQL), so claim again shortly; only a claim that finds
                    # nothing waits for a notification
                    await _sleep_or_stop(stop, max(self.gather_seconds, BUSY_POLL_SECONDS))
                    continue
                await wait_any(stop, self._wake, self.idle_poll_seconds)
                if self.gather_seconds and self._wake.is_set():  # woken by a commit: let more commit
                    await _sleep_or_stop(stop, self.gather_seconds)
        finally:
            listener.cancel()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), timeout=seconds)
