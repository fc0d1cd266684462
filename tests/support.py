"""What every service's tests share, written once: stand-in publishers (a service that only has an outbox,
so a test can emit an event as the real owner would), readers of a service's outbox and audit log, a plain
Kafka topic reader, `eventually`, and small runtime helpers. What is specific to one service (request
bodies, its own shortcuts) stays in tests/<service>/support.py."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar

import jwt
from aiokafka import AIOKafkaConsumer
from pydantic import BaseModel
from sqlalchemy import MetaData, Row, func, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import dev_private_key, issue_dev_token
from pena.contracts import BY_NAME, ParticipantRegistered, ParticipantStatusChanged
from pena.definition import ServiceDefinition
from pena.outbox import emit
from pena.runtime import Runtime
from pena.settings import Settings
from pena.tables import audit_log, outbox

T = TypeVar("T")

PADANG_VILLAGE = "1371011001"  # Kota Padang (13.71), a village in it
NIK_TOKEN = "t" * 64  # a stand-in token: the registry never publishes the NIK itself


# --- stand-in publishers -------------------------------------------------------------------------------


def stand_in(name: str) -> ServiceDefinition:
    """A service with no tables, routes or handlers of its own: the runtime gives it a database with the
    kernel tables (outbox among them) and a relay that publishes to the topic of `name`, so an event it
    emits travels exactly as the real owning service's would."""
    return ServiceDefinition(name=name, metadata=MetaData())


participants_publisher = stand_in("participants")
training_publisher = stand_in("training")
monev_publisher = stand_in("monev")
graduation_publisher = stand_in("graduation")


@dataclass(frozen=True)
class Announcement:
    """One event to emit from a stand-in publisher: contract name, payload, subject and event time."""

    name: str
    payload: BaseModel
    subject: str
    time: datetime


async def publish(runtime: Runtime, *announcements: Announcement, drain: bool = True) -> None:
    """Writes the announcements into their owning service's outbox in one transaction (the owner is read
    from the contract, so all must belong to one service). With `drain` the relay publishes them at once
    (on the in-process bus that runs the consumers' handlers); without, the relay worker does it."""
    owners = {BY_NAME[a.name].service for a in announcements}
    assert len(owners) == 1, f"one transaction, one owning service: {sorted(owners)}"
    owner = owners.pop()
    async with runtime.service(owner).db.transaction() as session:
        for a in announcements:
            await emit(session, a.name, a.payload, subject=a.subject, time=a.time)
    if drain:
        await drain_relay(runtime, owner)


async def drain_relay(runtime: Runtime, service: str) -> int:
    """Publishes what `service`'s outbox holds now; returns how many events went out."""
    relay = runtime.service(service).relay
    assert relay is not None, f"{service} runs without a relay"
    return await relay.drain()


# --- participant events, as the registry publishes them --------------------------------------------------

REGISTERED_AT = datetime(2025, 11, 1, tzinfo=UTC)


def registered(
    participant_id: str,
    *,
    version: int = 1,
    status: str = "active",
    region_code: str = PADANG_VILLAGE,
    household_size: int | None = None,
    income: int | None = None,
    at: datetime = REGISTERED_AT,
    birth_year: int | None = 1988,
    business_field: str | None = "fashion_menjahit",
    assistance_programmes: tuple[str, ...] = ("PKH",),
    dtsen_decile: int | None = 2,
) -> Announcement:
    """participant.registered of a KPM member who meets training's entry rules unless told otherwise."""
    payload = ParticipantRegistered(
        participant_id=participant_id,
        version=version,
        nik_token=NIK_TOKEN,
        registered_at=at,
        region_code=region_code,
        household_size=household_size,
        baseline_monthly_income=income,
        status=status,  # type: ignore[arg-type]
        birth_year=birth_year,
        business_field=business_field,
        assistance_programmes=list(assistance_programmes),
        dtsen_decile=dtsen_decile,
    )
    return Announcement("participant.registered", payload, participant_id, at)


def status_changed(
    participant_id: str, *, to: str, version: int, reason_code: str = "test", at: datetime = REGISTERED_AT
) -> Announcement:
    payload = ParticipantStatusChanged(
        participant_id=participant_id,
        version=version,
        from_status="active",
        to_status=to,  # type: ignore[arg-type]
        reason_code=reason_code,
        changed_at=at,
    )
    return Announcement("participant.status_changed", payload, participant_id, at)


async def register(runtime: Runtime, *participant_ids: str, drain: bool = True, **facts: Any) -> None:
    """Announces participants from the stand-in registry in one transaction (`facts`: see registered())."""
    await publish(runtime, *(registered(pid, **facts) for pid in participant_ids), drain=drain)


# --- readers ---------------------------------------------------------------------------------------------


async def in_service(runtime: Runtime, service: str, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
    """Runs `work` in one transaction on `service`'s database."""
    async with runtime.service(service).db.transaction() as session:
        return await work(session)


async def outbox_events(runtime: Runtime, service: str, name: str | None = None) -> list[dict[str, Any]]:
    """The CloudEvent envelopes in `service`'s outbox (of one event name, if given), oldest first."""
    query = select(outbox.c.envelope).order_by(outbox.c.id)
    if name is not None:
        query = query.where(outbox.c.event_name == name)
    async with runtime.service(service).db.transaction() as session:
        return list((await session.execute(query)).scalars().all())


async def outbox_data(runtime: Runtime, service: str, name: str) -> list[dict[str, Any]]:
    """The payloads (`data`) of `service`'s outbox events of one name, oldest first."""
    return [envelope["data"] for envelope in await outbox_events(runtime, service, name)]


async def outbox_names(runtime: Runtime, service: str) -> list[str]:
    """The event names in `service`'s outbox, oldest first."""
    async with runtime.service(service).db.transaction() as session:
        return list((await session.execute(select(outbox.c.event_name).order_by(outbox.c.id))).scalars().all())


async def mark_unpublished(runtime: Runtime, service: str) -> None:
    """Makes the relay publish every row again, as after a crash between publishing and marking."""
    async with runtime.service(service).db.transaction() as session:
        await session.execute(update(outbox).values(published_at=None))


async def audit_rows(runtime: Runtime, service: str, action: str) -> list[Row[Any]]:
    """`service`'s audit log rows of one action, oldest first."""
    query = select(audit_log).where(audit_log.c.action == action).order_by(audit_log.c.id)
    async with runtime.service(service).db.transaction() as session:
        return list((await session.execute(query)).all())


async def audit_actions(runtime: Runtime, service: str) -> list[str]:
    """Every action in `service`'s audit log, oldest first."""
    async with runtime.service(service).db.transaction() as session:
        return list((await session.execute(select(audit_log.c.action).order_by(audit_log.c.id))).scalars().all())


async def count_rows(runtime: Runtime, service: str, table: Any) -> int:
    async with runtime.service(service).db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def read_topic(bootstrap: str, topic: str, *, expect: int, timeout: float = 60.0) -> list[dict[str, Any]]:
    """Reads a topic from the beginning with a plain aiokafka consumer (no group, no project code)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    out: list[dict[str, Any]] = []
    try:
        deadline = asyncio.get_running_loop().time() + timeout
        while len(out) < expect and asyncio.get_running_loop().time() < deadline:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                out.extend(
                    {"key": r.key, "value": json.loads(r.value), "partition": r.partition, "headers": dict(r.headers)}
                    for r in records
                )
    finally:
        await consumer.stop()
    return out


async def eventually(
    check: Callable[[], Awaitable[T]],
    what: str = "condition",
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    tolerate: tuple[type[Exception], ...] = (),
) -> T:
    """Polls `check` every `interval` seconds until it returns something truthy, and returns that; fails
    naming `what` (and the last answer) after `timeout` seconds. Exceptions of the `tolerate` types count as
    "not yet" (a service still starting answers with connection errors)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last: object = None
    while asyncio.get_running_loop().time() < deadline:
        try:
            result = await check()
        except tolerate as exc:
            last = exc
        else:
            if result:
                return result
            last = result
        await asyncio.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} (last: {str(last)[:500]})")


# ------------------------------------------------------------------ tokens with any claims

ABSENT: Any = object()
"""A claim value meaning "leave the claim out of the token"."""


def bearer(settings: Settings, role: str, *, sub: str | None = None, **claims: Any) -> dict[str, str]:
    """Authorization header of a dev-key token for `role` carrying exactly these extra claims, including
    values `issue_dev_token` cannot write (an empty or malformed `unit`, a number, a list); a claim given
    as ABSENT is left out. The dev token's own claims, with `unit` replaced, signed again."""
    issued = jwt.decode(issue_dev_token(settings, role=role, sub=sub), options={"verify_signature": False})
    body = {name: value for name, value in issued.items() if name != "unit"}
    body |= {name: value for name, value in claims.items() if value is not ABSENT}
    token = jwt.encode(body, dev_private_key(settings), algorithm="RS256", headers={"kid": "pena-dev"})
    return {"Authorization": f"Bearer {token}"}
