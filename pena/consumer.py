"""Idempotent event handling shared by the Kafka consumer runner and the in-process bus.

A handler is a plain async function `handler(session, delivery)`. Its effects and the inbox row
(unique on consumer + event id) commit in one transaction, so a redelivered event changes nothing.
Failures are retried a bounded number of times with backoff; then the event becomes a dead letter
(kept in the consumer's database and, on Kafka, sent to the dead-letter topic) and the consumer moves on.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from contextvars import Token
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from pena import failpoints, metrics, telemetry
from pena.clock import Clock
from pena.context import causation_id_var, correlation_id_var, passed_traceparent_var, valid_traceparent
from pena.contracts import BY_TYPE, SERVICES
from pena.db import Database, insert_rows
from pena.envelope import CloudEvent, service_source
from pena.logging_setup import redact
from pena.settings import Settings
from pena.tables import dead_letters, inbox

log = logging.getLogger("pena.consumer")
Outcome = Literal["processed", "duplicate", "ignored", "dead_lettered"]


class RetryLater(Exception):
    """Raise from a handler when the event arrived before something it depends on (out of order);
    it is retried with backoff and, if still early, parked as a dead letter for replay."""


@dataclass
class Delivery:
    """What a handler receives: the validated payload, the envelope, and the consumer's clock."""

    event: CloudEvent
    payload: Any
    clock: Clock
    settings: Settings
    consumer: str

    def context(self) -> AbstractContextManager[None]:
        """The event's correlation and causation context: what a batch handler builds for this event
        (outbox rows, audit rows) inside it carries this event's ids."""
        return event_context(self.event, self.consumer)


Handler = Callable[[AsyncSession, Delivery], Awaitable[None]]
# the set-based form of a handler for high-volume events: same effects as calling the per-event
# handler on each delivery in order, with fewer statements
BatchHandler = Callable[[AsyncSession, list[Delivery]], Awaitable[None]]


@dataclass
class Subscriber:
    """One consuming service: its name, its database and its handlers keyed by event name."""

    name: str
    db: Database
    handlers: dict[str, Handler]
    clock: Clock
    settings: Settings
    attempts: int = 4
    backoff_seconds: float = 0.2
    dead_letter_sinks: list[Callable[[dict[str, Any]], Awaitable[None]]] = field(default_factory=list)
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)

    def handler_for(self, event_type: str) -> tuple[str, Handler] | None:
        contract = BY_TYPE.get(event_type)
        if contract is None or contract.name not in self.handlers:
            return None
        return contract.name, self.handlers[contract.name]


class PoisonEvent(Exception):
    """The event can never be handled as it is (malformed, unknown type, invalid payload)."""


def parse_event(raw: bytes | str | dict[str, Any]) -> CloudEvent:
    try:
        if isinstance(raw, dict):
            return CloudEvent.model_validate(raw)
        return CloudEvent.model_validate_json(raw)
    except ValidationError as exc:
        raise PoisonEvent(f"malformed CloudEvent: {_short(exc)}") from exc


def validate_payload(event: CloudEvent) -> BaseModel:
    contract = BY_TYPE.get(event.type)
    if contract is None:
        raise PoisonEvent(f"unknown event type {event.type!r}")
    try:
        return contract.payload.model_validate(event.data)
    except ValidationError as exc:
        raise PoisonEvent(f"invalid {contract.name} payload: {_short(exc)}") from exc


INPROCESS_ORIGIN = "inprocess"
"""Origins of deliveries: Kafka `<topic>/<partition>/<offset>`; in-process bus
`inprocess/<service>/<outbox row id>` (the service whose outbox held the event)."""


def origin_service(settings: Settings, origin: str) -> str | None:
    """The service whose topic (or, on the in-process bus, whose outbox) a delivery came from; None
    when the origin names no PENA service's topic."""
    head, _, rest = origin.partition("/")
    if head == INPROCESS_ORIGIN:
        service = rest.partition("/")[0]
        return service if service in SERVICES else None
    return _topic_services(settings).get(head)


_TOPIC_SERVICES: dict[str, dict[str, str]] = {}


def _topic_services(settings: Settings) -> dict[str, str]:
    """Topic -> owning service, per topic namespace (looked up for every consumed event)."""
    found = _TOPIC_SERVICES.get(settings.topic_namespace)
    if found is None:
        found = _TOPIC_SERVICES[settings.topic_namespace] = {settings.topic(service): service for service in SERVICES}
    return found


def check_provenance(settings: Settings, event: CloudEvent, origin: str) -> None:
    """Events only from their owners: an event type is accepted only from the topic of the service
    that owns it (pena.contracts) and with that service's CloudEvents `source`. Anything else is a
    `PoisonEvent` whose message starts with the reason (`foreign_topic`, `foreign_source`), so it is
    dead-lettered and nothing is applied. The one check of the Kafka consumer and the in-process bus."""
    contract = BY_TYPE.get(event.type)
    if contract is None:
        raise PoisonEvent(f"unknown event type {event.type!r}")
    came_from = origin_service(settings, origin)
    if came_from != contract.service:
        where = f"the {came_from} topic" if came_from else "no PENA service's topic"
        raise PoisonEvent(
            f"foreign_topic: {contract.name} is owned by {contract.service} and is accepted only on its topic;"
            f" this one came from {where}"
        )
    expected = service_source(contract.service)
    if event.source != expected:
        raise PoisonEvent(
            f"foreign_source: {contract.name} must carry source {expected!r}, this one carries {event.source[:120]!r}"
        )


def admit(sub: Subscriber, event: CloudEvent, origin: str) -> BaseModel:
    """The validated payload of an event this consumer may apply: its provenance checked first
    (`check_provenance`), then its payload against the contract. Raises `PoisonEvent` otherwise."""
    check_provenance(sub.settings, event, origin)
    return validate_payload(event)


class event_context:  # lower case: used like the function it was, `with event_context(event):`
    """What is written while handling an event is correlated with it, caused by it and in its trace
    (a span of the consumer's when tracing is on: pena.telemetry.consuming; tracing off, the event's
    traceparent passed on as it came). A class rather than a @contextmanager generator: batch handlers
    enter it once per event they write for, and the generator machinery was a visible share of the
    consumer's time (docs/benchmarks.md)."""

    __slots__ = ("causation", "consumer", "correlation", "event", "passed", "span")

    def __init__(self, event: CloudEvent, consumer: str | None = None) -> None:
        self.event = event
        self.consumer = consumer

    def __enter__(self) -> None:
        event = self.event
        self.correlation = correlation_id_var.set(event.correlationid or event.id)
        self.causation = causation_id_var.set(event.id)
        self.span: AbstractContextManager[None] | None = None
        self.passed: Token[str | None] | None = None
        if telemetry.enabled():
            self.span = telemetry.consuming(event, self.consumer)
            self.span.__enter__()
        else:  # what telemetry.consuming does when off, without a generator per event
            self.passed = passed_traceparent_var.set(valid_traceparent(event.traceparent))

    def __exit__(self, *exc: Any) -> None:
        try:
            if self.span is not None:
                self.span.__exit__(*exc)
        finally:
            if self.passed is not None:
                passed_traceparent_var.reset(self.passed)
            causation_id_var.reset(self.causation)
            correlation_id_var.reset(self.correlation)


async def handle_once(sub: Subscriber, event: CloudEvent, handler: Handler, payload: BaseModel) -> Outcome:
    """One attempt: inbox insert + handler effects in one transaction."""
    with event_context(event, sub.name):
        async with sub.db.transaction() as session:
            fresh = (
                await session.execute(
                    pg_insert(inbox)
                    .values(consumer=sub.name, event_id=event.id, event_type=event.type)
                    .on_conflict_do_nothing()
                    .returning(inbox.c.event_id)
                )
            ).first()
            if fresh is None:
                return "duplicate"
            await handler(session, Delivery(event, payload, sub.clock, sub.settings, sub.name))
            failpoints.hit("consumer.in_transaction")  # crash tests: effects written, not committed
        return "processed"


async def deliver(sub: Subscriber, raw: bytes | str | dict[str, Any], *, origin: str) -> Outcome:
    """Parses, validates and handles one event with bounded retries; dead-letters what cannot be handled."""
    event: CloudEvent | None = None
    try:
        event = parse_event(raw)
        # provenance before anything else: a forged event is parked even where it would be ignored
        check_provenance(sub.settings, event, origin)
        found = sub.handler_for(event.type)
        if found is None:
            return _count(sub, event.type, "ignored")  # a known event this consumer does not need
        name, handler = found
        payload = validate_payload(event)
    except PoisonEvent as exc:
        await _dead_letter(sub, raw, event, origin, str(exc), attempts=0)
        return _count(sub, event.type if event else "malformed", "dead_lettered")

    last_error = ""
    attempt = 0
    while attempt < sub.attempts:
        attempt += 1
        try:
            outcome = await handle_once(sub, event, handler, payload)
            metrics.EVENT_LAG.labels(sub.name).observe(max(0.0, (datetime.now(UTC) - event.time).total_seconds()))
            return _count(sub, name, outcome)
        except asyncio.CancelledError:
            raise
        except PoisonEvent as exc:  # the handler found the event can never apply: parked at once, no retries
            error = f"{type(exc).__name__}: {redact(str(exc))[:500]}"
            await _dead_letter(sub, raw, event, origin, error, attempts=attempt)
            return _count(sub, name, "dead_lettered")
        except Exception as exc:
            if is_transient(exc):
                # the database is away (restart, failover): wait for it, never dead-letter for that
                attempt -= 1
                log.warning(
                    "database unavailable; event will be retried", extra={"consumer": sub.name, "event_id": event.id}
                )
                await asyncio.sleep(1.0)
                continue
            last_error = f"{type(exc).__name__}: {redact(str(exc))[:500]}"
            log.warning(
                "handler failed",
                extra={
                    "consumer": sub.name,
                    "event_id": event.id,
                    "event_type": name,
                    "attempt": attempt,
                    "error": last_error,
                },
            )
            if attempt < sub.attempts:
                await asyncio.sleep(sub.backoff_seconds * 2 ** (attempt - 1))
    await _dead_letter(sub, raw, event, origin, last_error, attempts=sub.attempts)
    return _count(sub, name, "dead_lettered")


@dataclass
class _Batchable:
    raw: bytes | str | dict[str, Any]
    origin: str
    name: str
    event: CloudEvent
    payload: BaseModel


Record = tuple[bytes | str | dict[str, Any], str]
"""A fetched record: its value and its origin (`<topic>/<partition>/<offset>`)."""


async def deliver_records(sub: Subscriber, records: Sequence[Record]) -> list[Outcome]:
    """Delivers one partition's fetched records (raw, origin) in order. Consecutive events of a type
    with a batch handler are applied together in one transaction (their inbox rows and the handler's
    set-based writes); everything else goes one by one through `deliver`."""
    return await _deliver_parsed(sub, _parsed(sub, records))


async def deliver_fetch(sub: Subscriber, partitions: Sequence[Sequence[Record]]) -> list[list[Outcome]]:
    """Delivers one fetch: each partition's records in order, outcomes per partition. When every
    partition's records are one run of events sharing a batch handler (a backlog of one kind of event,
    the common case under load), the whole fetch is applied in ONE transaction: its inbox rows and one
    call of the batch handler with the partitions' deliveries one after the other (each partition's
    order kept; partitions are independent, one family's events share a partition). Otherwise each
    partition goes through `deliver_records`, side by side, one transaction per run each. Either way
    the caller commits the offsets only after this returns, so a crash redelivers and the inbox skips
    what was applied."""
    parsed = [_parsed(sub, records) for records in partitions]
    items = [item for part in parsed for _, _, item in part]
    batchable = [item for item in items if item is not None]
    one_run = len(batchable) == len(items) > 1 and len({id(sub.batch_handlers[i.name]) for i in batchable}) == 1
    if len(parsed) > 1 and one_run:
        outcomes = iter(await _deliver_run(sub, batchable))
        return [[next(outcomes) for _ in part] for part in parsed]
    return list(await asyncio.gather(*(_deliver_parsed(sub, part) for part in parsed)))


Parsed = list[tuple[bytes | str | dict[str, Any], str, _Batchable | None]]


def _parsed(sub: Subscriber, records: Sequence[Record]) -> Parsed:
    return [(raw, origin, _batchable(sub, raw, origin)) for raw, origin in records]


async def _deliver_parsed(sub: Subscriber, records: Parsed) -> list[Outcome]:
    outcomes: list[Outcome] = []
    run: list[_Batchable] = []
    for raw, origin, item in records:
        # a run goes on while the events share a batch handler (e.g. registered, updated, status_changed)
        if run and (item is None or sub.batch_handlers[item.name] is not sub.batch_handlers[run[0].name]):
            outcomes += await _deliver_run(sub, run)
            run = []
        if item is None:
            outcomes.append(await deliver(sub, raw, origin=origin))
        else:
            run.append(item)
    if run:
        outcomes += await _deliver_run(sub, run)
    return outcomes


def _batchable(sub: Subscriber, raw: bytes | str | dict[str, Any], origin: str) -> _Batchable | None:
    """The parsed event if a batch handler takes it; None sends it down the one-by-one path (which
    also dead-letters what is malformed)."""
    if not sub.batch_handlers:
        return None
    try:
        event = parse_event(raw)
        found = sub.handler_for(event.type)
        if found is None or found[0] not in sub.batch_handlers:
            return None
        return _Batchable(raw, origin, found[0], event, admit(sub, event, origin))
    except PoisonEvent:
        return None


async def _deliver_run(sub: Subscriber, run: list[_Batchable]) -> list[Outcome]:
    if len(run) == 1:
        return [await deliver(sub, run[0].raw, origin=run[0].origin)]
    name = run[0].name
    while True:
        try:
            fresh = await _handle_batch_once(sub, run)
            break
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if is_transient(exc):
                log.warning("database unavailable; batch will be retried", extra={"consumer": sub.name})
                await asyncio.sleep(1.0)
                continue
            # the whole batch rolled back: one by one, a faulty event is retried and dead-lettered alone
            log.warning(
                "batch failed; delivering its events one by one",
                extra={"consumer": sub.name, "event_type": name, "error": f"{type(exc).__name__}"},
            )
            return [await deliver(sub, item.raw, origin=item.origin) for item in run]
    now, lag = datetime.now(UTC), metrics.EVENT_LAG.labels(sub.name)
    outcomes: list[Outcome] = []
    counts: dict[tuple[str, Outcome], int] = {}
    for item in run:
        lag.observe(max(0.0, (now - item.event.time).total_seconds()))
        outcome: Outcome = "processed" if id(item) in fresh else "duplicate"
        outcomes.append(outcome)
        counts[item.name, outcome] = counts.get((item.name, outcome), 0) + 1
    for (event_name, outcome), n in counts.items():
        metrics.EVENTS_HANDLED.labels(sub.name, event_name, outcome).inc(n)
    return outcomes


async def _handle_batch_once(sub: Subscriber, run: list[_Batchable]) -> set[int]:
    """One attempt: the run's inbox rows + the batch handler's effects in one transaction. Returns
    the ids (python object ids) of the items that were new."""
    async with sub.db.transaction() as session:
        rows = [{"consumer": sub.name, "event_id": item.event.id, "event_type": item.event.type} for item in run]
        new_ids = set(await insert_rows(session, inbox, rows, skip_conflicts=True, returning="event_id"))
        fresh: list[_Batchable] = []
        for item in run:  # the same event twice in one fetch counts once
            if item.event.id in new_ids:
                new_ids.discard(item.event.id)
                fresh.append(item)
        if fresh:
            deliveries = [Delivery(i.event, i.payload, sub.clock, sub.settings, sub.name) for i in fresh]
            await sub.batch_handlers[run[0].name](session, deliveries)
        failpoints.hit("consumer.in_transaction")
    return {id(item) for item in fresh}


def is_transient(exc: BaseException) -> bool:
    """Infrastructure failures (connection refused, dropped, server shutting down or starting up) as
    opposed to a faulty event or request. Walks the whole cause chain: SQLAlchemy wraps asyncpg's
    errors two levels deep."""
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    for current in causes(exc):
        if isinstance(current, OSError | TimeoutError | ConnectionError | InterfaceError | OperationalError):
            return True
        if isinstance(current, DBAPIError) and current.connection_invalidated:
            return True
        if type(current).__name__ in _TRANSIENT_NAMES:
            return True
    return False


def causes(exc: BaseException) -> Iterator[BaseException]:
    """The exception and its causes (explicit or implicit), each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


# deadlocks and serialization failures are resolved by trying again
_TRANSIENT_NAMES = {
    "DeadlockDetectedError",
    "SerializationError",
    "CannotConnectNowError",
    "ConnectionDoesNotExistError",
    "AdminShutdownError",
    "ConnectionFailureError",
    "TooManyConnectionsError",
    "InterfaceError",
}


def _count(sub: Subscriber, name: str, outcome: Outcome) -> Outcome:
    metrics.EVENTS_HANDLED.labels(sub.name, name, outcome).inc()
    return outcome


async def _dead_letter(
    sub: Subscriber, raw: Any, event: CloudEvent | None, origin: str, error: str, attempts: int
) -> None:
    record = {
        "consumer": sub.name,
        "event_id": event.id if event else None,
        "event_type": event.type if event else None,
        "origin": origin,
        "error": redact(error),
        "attempts": attempts,
        # a foreign or malformed event may carry anything: whatever looks like a NIK or KK is masked
        # (our own contracts never carry one, so replaying a stored envelope loses nothing)
        "envelope": redact(event.model_dump(mode="json", exclude_none=True)) if event else None,
        "raw_preview": None if event else redact(_preview(raw)),
    }
    log.error("event dead-lettered", extra={k: v for k, v in record.items() if k not in ("envelope", "raw_preview")})
    # the dead-letter topic first: if publishing fails, nothing is recorded and the event is redelivered
    # (at worst a second copy on the DLT); the consumer's offset moves on only after the row is stored
    for sink in sub.dead_letter_sinks:
        await sink(record)
    async with sub.db.transaction() as session:
        await session.execute(insert(dead_letters).values(**record))


async def replay_dead_letters(sub: Subscriber, *, ids: list[int] | None = None) -> dict[int, str]:
    """Re-runs stored dead letters through the same idempotent path (after a fix was deployed)."""
    async with sub.db.transaction() as session:
        query = select(dead_letters).where(
            dead_letters.c.replayed_at.is_(None),
            dead_letters.c.consumer == sub.name,
            dead_letters.c.envelope.is_not(None),
        )
        if ids:
            query = query.where(dead_letters.c.id.in_(ids))
        rows = (await session.execute(query.order_by(dead_letters.c.id))).all()
    results: dict[int, str] = {}
    for row in rows:
        try:  # one try per replay: a still-failing letter stays parked
            event = parse_event(row.envelope)
            found = sub.handler_for(event.type)
            if found is None:
                check_provenance(sub.settings, event, row.origin)
                outcome = "ignored"
            else:
                # the provenance rule holds on replay too: a forged event stays parked
                outcome = await handle_once(sub, event, found[1], admit(sub, event, row.origin))
        except PoisonEvent as exc:  # e.g. foreign_source: it never becomes applicable
            outcome = f"failed: {str(exc).partition(':')[0]}"
        except Exception as exc:
            outcome = f"failed: {type(exc).__name__}"
        results[row.id] = outcome
        if not outcome.startswith("failed"):
            async with sub.db.transaction() as session:
                await session.execute(
                    update(dead_letters)
                    .where(dead_letters.c.id == row.id)
                    .values(replayed_at=sub.clock.now(), replay_outcome=outcome)
                )
    return results


def _preview(raw: Any) -> str:
    if isinstance(raw, bytes):
        return raw[:2000].decode("utf-8", errors="replace")
    return str(raw)[:2000]


def _short(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()[:5])
