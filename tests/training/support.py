"""Test support for the training service: a small stand-in "participants" publisher that announces
participants through its own outbox (as the real registry does), and API shortcuts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import MetaData, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.contracts import ParticipantRegistered, ParticipantStatusChanged
from pena.definition import ServiceDefinition
from pena.outbox import emit
from pena.runtime import Runtime
from pena.tables import audit_log, outbox
from tests.kernel.helpers import eventually  # noqa: F401 - re-exported for this suite

participants_stub = ServiceDefinition(name="participants", metadata=MetaData())
AT = datetime(2025, 11, 1, tzinfo=UTC)


async def announce_registered(
    session: AsyncSession, participant_id: str, *, status: str = "active", version: int = 1
) -> None:
    payload = ParticipantRegistered(
        participant_id=participant_id,
        version=version,
        nik_token="t" * 64,
        registered_at=AT,
        region_code="1371011001",
        status=status,  # type: ignore[arg-type]
    )
    await emit(session, "participant.registered", payload, subject=participant_id, time=AT)


async def announce_status(session: AsyncSession, participant_id: str, *, to: str, version: int) -> None:
    payload = ParticipantStatusChanged(
        participant_id=participant_id,
        version=version,
        from_status="active",
        to_status=to,  # type: ignore[arg-type]
        reason_code="test",
        changed_at=AT,
    )
    await emit(session, "participant.status_changed", payload, subject=participant_id, time=AT)


async def register(runtime: Runtime, *participant_ids: str, status: str = "active", drain: bool = True) -> None:
    """Announces participants from the stand-in registry; on the in-process bus drain() delivers them."""
    registry = runtime.service("participants")
    async with registry.db.transaction() as session:
        for pid in participant_ids:
            await announce_registered(session, pid, status=status)
    if drain:
        assert registry.relay is not None
        await registry.relay.drain()


async def outbox_events(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    async with runtime.service("training").db.transaction() as session:
        rows = (
            await session.execute(select(outbox.c.envelope).where(outbox.c.event_name == name).order_by(outbox.c.id))
        ).scalars()
        return list(rows)


async def audit_rows(runtime: Runtime, action: str) -> list[Any]:
    async with runtime.service("training").db.transaction() as session:
        return list((await session.execute(select(audit_log).where(audit_log.c.action == action))).all())


async def count_rows(runtime: Runtime, table: Any) -> int:
    async with runtime.service("training").db.transaction() as session:
        return int((await session.execute(select(func.count()).select_from(table))).scalar_one())


async def create_centre(client: httpx.AsyncClient, admin: dict[str, str], code: str = "BBPPKS-PADANG") -> str:
    response = await client.post(
        "/v1/training-centres",
        json={"name": "BBPPKS Padang", "code": code, "region_code": "1371", "operators": ["op-1"]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def batch_body(
    centre_id: str, *, start: date = date(2025, 12, 1), sessions: int = 5, capacity: int = 10, **extra: Any
) -> dict[str, Any]:
    return {
        "centre_id": centre_id,
        "name": "Angkatan I Menjahit",
        "business_field": "fashion_menjahit",
        "method": "life_skill_training",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=sessions + 2)).isoformat(),
        "sessions": [
            {"date": (start + timedelta(days=i)).isoformat(), "module": "technical_skills"} for i in range(sessions)
        ],
        "region_code": "1371011001",
        "capacity": capacity,
        "trainers": ["trainer-1"],
        **extra,
    }


async def open_batch(
    client: httpx.AsyncClient, headers: dict[str, str], centre_id: str, **kwargs: Any
) -> dict[str, Any]:
    response = await client.post("/v1/batches", json=batch_body(centre_id, **kwargs), headers=headers)
    assert response.status_code == 201, response.text
    batch = response.json()
    moved = await client.post(f"/v1/batches/{batch['id']}/status", json={"status": "open"}, headers=headers)
    assert moved.status_code == 200, moved.text
    return dict(batch)


async def set_status(client: httpx.AsyncClient, headers: dict[str, str], batch_id: str, status: str) -> httpx.Response:
    return await client.post(f"/v1/batches/{batch_id}/status", json={"status": status}, headers=headers)
