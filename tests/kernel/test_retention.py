"""The idempotency store keeps no personal data in clear and expires (issue 13, item 5), and the
kernel's retention job deletes old outbox, inbox and idempotency rows in bounded batches. Real
PostgreSQL behind a real app."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import httpx
from fastapi import APIRouter, Depends, status
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import MetaData, func, insert, select, text, update
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal, require
from pena.clock import ManualClock
from pena.definition import ServiceDefinition
from pena.http.bodies import StrictModel
from pena.http.deps import session_dependency
from pena.idempotency import IdempotencyKey, idempotent, seal
from pena.ids import new_id
from pena.queries import purge_older_than
from pena.retention import RETENTION_JOB, schedule_retention
from pena.runtime import Runtime
from pena.settings import Settings
from pena.tables import idempotency_keys, inbox, outbox, scheduled_jobs
from tests.conftest import RuntimeFactory

NOTE = "Ibu Siti Aminah dirawat di RSUD, usaha warung tutup sementara"
Auth = Callable[..., dict[str, str]]

router = APIRouter()


class NoteCreate(StrictModel):
    participant_id: str = Field(min_length=1, max_length=40)
    note: str = Field(min_length=1, max_length=500)


@router.post("/v1/notes", status_code=status.HTTP_201_CREATED)
async def post_note(
    body: NoteCreate,
    session: Annotated[AsyncSession, session_dependency("notes")],
    principal: Annotated[Principal, Depends(require("monev:submit"))],
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        # like a monev survey answer: the decrypted note goes back to the caller
        return 201, {"id": new_id(), "participant_id": body.participant_id, "note": body.note}

    return await idempotent(
        session, principal=principal, key=idempotency_key, scope="note.create", body=body.model_dump(), effect=effect
    )


notes = ServiceDefinition(name="notes", metadata=MetaData(), routers=[router])


async def stored_keys(runtime: Runtime) -> list[dict[str, Any]]:
    async with runtime.service("notes").db.transaction() as session:
        return [dict(r._mapping) for r in (await session.execute(select(idempotency_keys))).all()]


async def age_keys(runtime: Runtime, hours: float) -> None:
    async with runtime.service("notes").db.transaction() as session:
        await session.execute(update(idempotency_keys).values(created_at=func.now() - timedelta(hours=hours)))


async def test_stored_answers_are_sealed_and_replayed_decrypted(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    runtime = await make_runtime([notes])
    client = api(runtime)
    headers = auth("admin") | {"Idempotency-Key": "note-1"}
    body = {"participant_id": "p-1", "note": NOTE}
    first = await client.post("/v1/notes", json=body, headers=headers)
    again = await client.post("/v1/notes", json=body, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["note"] == NOTE
    [row] = await stored_keys(runtime)
    at_rest = json.dumps(row, default=str)
    assert "Siti" not in at_rest
    assert "warung" not in at_rest
    assert first.json()["id"] not in at_rest  # the whole answer is sealed, not only the note
    assert set(row["response_body"]) == {"sealed"}
    # the fingerprint is keyed: not the plain digest of the request, which a guess could confirm
    plain = json.dumps({"scope": "note.create", "body": body}, sort_keys=True, default=str).encode()
    assert row["request_hash"] != hashlib.sha256(plain).hexdigest()
    other = await client.post("/v1/notes", json=body | {"note": "lain"}, headers=headers)
    assert other.status_code == 422
    assert other.json()["type"].endswith("idempotency-key-reuse")


async def test_a_key_older_than_the_ttl_behaves_as_new(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    runtime = await make_runtime([notes])
    client = api(runtime)
    headers = auth("admin") | {"Idempotency-Key": "note-2"}
    first = await client.post("/v1/notes", json={"participant_id": "p-2", "note": "satu"}, headers=headers)
    assert first.status_code == 201
    await age_keys(runtime, 23)  # within the default 24 h: still the first answer, another body still 422
    replay = await client.post("/v1/notes", json={"participant_id": "p-2", "note": "satu"}, headers=headers)
    assert replay.json()["id"] == first.json()["id"]
    assert (
        await client.post("/v1/notes", json={"participant_id": "p-2", "note": "dua"}, headers=headers)
    ).status_code == 422
    await age_keys(runtime, 25)  # expired: the same key with another body is a new request
    fresh = await client.post("/v1/notes", json={"participant_id": "p-2", "note": "dua"}, headers=headers)
    assert fresh.status_code == 201, fresh.text
    assert fresh.json()["id"] != first.json()["id"]
    again = await client.post("/v1/notes", json={"participant_id": "p-2", "note": "dua"}, headers=headers)
    assert again.json()["id"] == fresh.json()["id"]  # and is replayed from now on
    [row] = await stored_keys(runtime)
    assert row["created_at"] > datetime.now(UTC) - timedelta(minutes=5)


async def test_the_ttl_is_a_setting(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth, settings: Settings
) -> None:
    short = settings.model_copy(update={"idempotency_ttl": timedelta(hours=1)})
    runtime = await make_runtime([notes], settings_=short)
    client = api(runtime)
    headers = auth("admin") | {"Idempotency-Key": "note-3"}
    first = await client.post("/v1/notes", json={"participant_id": "p-3", "note": "satu"}, headers=headers)
    await age_keys(runtime, 2)
    later = await client.post("/v1/notes", json={"participant_id": "p-3", "note": "satu"}, headers=headers)
    assert later.status_code == 201
    assert later.json()["id"] != first.json()["id"]
    assert Settings(environment="test", _env_file=None).idempotency_ttl == timedelta(hours=24)


async def test_an_answer_sealed_under_a_rotated_key_is_409_never_a_second_effect(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth, settings: Settings
) -> None:
    runtime = await make_runtime([notes])
    client = api(runtime)
    headers = auth("admin") | {"Idempotency-Key": "note-4"}
    body = {"participant_id": "p-4", "note": "satu"}
    assert (await client.post("/v1/notes", json=body, headers=headers)).status_code == 201
    old_key = settings.model_copy(update={"field_encryption_key": base64.b64encode(bytes(range(32))).decode()})
    async with runtime.service("notes").db.transaction() as session:
        await session.execute(update(idempotency_keys).values(response_body=seal({"id": "x"}, old_key)))
    again = await client.post("/v1/notes", json=body, headers=headers)
    assert again.status_code == 409
    assert again.json()["type"].endswith("idempotency-answer-unreadable")


# --- retention --------------------------------------------------------------------------------------


async def seed_bookkeeping(runtime: Runtime, *, old_inbox: int = 1) -> None:
    """Rows on both sides of each default retention (outbox 7 d after publication, inbox 30 d,
    idempotency 24 h), aged with the database clock that stamps them."""

    def ago(**kw: float) -> Any:
        return func.now() - timedelta(**kw)

    envelope = {"specversion": "1.0"}
    async with runtime.service("notes").db.transaction() as session:
        for event_id, published, created in [
            ("o-old", ago(days=8), ago(days=9)),
            ("o-recent", ago(days=6), ago(days=9)),
            ("o-unpublished", None, ago(days=40)),  # never published: kept however old
        ]:
            await session.execute(
                insert(outbox).values(
                    event_id=event_id, event_name="x", envelope=envelope, published_at=published, created_at=created
                )
            )
        for i in range(old_inbox):
            await session.execute(
                insert(inbox).values(consumer="c", event_id=f"i-old-{i}", event_type="t", processed_at=ago(days=31))
            )
        await session.execute(
            insert(inbox).values(consumer="c", event_id="i-recent", event_type="t", processed_at=ago(days=29))
        )
        for key, hours in [("k-old", 25), ("k-recent", 23)]:
            await session.execute(
                insert(idempotency_keys).values(
                    client_id="c", idem_key=key, request_hash="h", created_at=ago(hours=hours)
                )
            )


async def remaining(runtime: Runtime) -> dict[str, list[str]]:
    async with runtime.service("notes").db.transaction() as session:
        return {
            "outbox": sorted((await session.execute(select(outbox.c.event_id))).scalars()),
            "inbox": sorted((await session.execute(select(inbox.c.event_id))).scalars()),
            "idempotency_keys": sorted((await session.execute(select(idempotency_keys.c.idem_key))).scalars()),
        }


async def retention_jobs(runtime: Runtime) -> list[tuple[str, bool]]:
    async with runtime.service("notes").db.transaction() as session:
        rows = await session.execute(
            select(scheduled_jobs.c.job_key, scheduled_jobs.c.done_at.is_not(None))
            .where(scheduled_jobs.c.kind == RETENTION_JOB)
            .order_by(scheduled_jobs.c.id)
        )
        return [(key, bool(done)) for key, done in rows.all()]


async def test_the_retention_job_deletes_what_is_past_its_retention_and_keeps_the_rest(
    make_runtime: RuntimeFactory,
) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 10, 20, tzinfo=UTC))
    runtime = await make_runtime([notes], clock=clock)
    await seed_bookkeeping(runtime)
    svc = runtime.service("notes")
    assert svc.scheduler is not None  # every service runs the kernel's jobs
    async with svc.db.transaction() as session:
        assert await schedule_retention(session, clock.now(), runtime.settings)
        assert not await schedule_retention(session, clock.now(), runtime.settings)  # once per interval
    assert await svc.scheduler.drain() == 1
    assert await remaining(runtime) == {
        "outbox": ["o-recent", "o-unpublished"],
        "inbox": ["i-recent"],
        "idempotency_keys": ["k-recent"],
    }
    # the next run is the next interval's (default one hour), not due yet
    assert await retention_jobs(runtime) == [
        ("pena.retention:2026-01-05T10:00:00+00:00", True),
        ("pena.retention:2026-01-05T11:00:00+00:00", False),
    ]
    clock.advance(timedelta(hours=1))
    assert await svc.scheduler.drain() == 1


async def test_retention_deletes_in_bounded_batches_until_done(
    make_runtime: RuntimeFactory, settings: Settings
) -> None:
    small = settings.model_copy(update={"retention_batch_size": 2})
    clock = ManualClock(datetime(2026, 1, 5, 10, 20, tzinfo=UTC))
    runtime = await make_runtime([notes], clock=clock, settings_=small)
    await seed_bookkeeping(runtime, old_inbox=5)
    svc = runtime.service("notes")
    assert svc.scheduler is not None
    deleted_per_statement: list[int] = []
    async with svc.db.transaction() as session:
        await schedule_retention(session, clock.now(), small)
    async with svc.db.transaction() as session:
        deleted_per_statement.append(await purge_older_than(session, "inbox", timedelta(days=30), 2))
        await session.rollback()
    assert deleted_per_statement == [2]  # one statement deletes at most the batch size
    assert await svc.scheduler.drain() == 3  # inbox: 2 + 2 + 1 old rows, a run each
    assert (await remaining(runtime))["inbox"] == ["i-recent"]
    keys = [key for key, _ in await retention_jobs(runtime)]
    assert len([k for k in keys if ":more:" in k]) == 2
    assert keys[-1] == "pena.retention:2026-01-05T11:00:00+00:00"


async def test_a_runtime_that_starts_its_workers_schedules_retention_for_every_service(
    make_runtime: RuntimeFactory,
) -> None:
    other = ServiceDefinition(name="other", metadata=MetaData())
    runtime = await make_runtime([notes, other], workers=True)
    for name in ("notes", "other"):
        async with runtime.service(name).db.transaction() as session:
            kinds = (await session.execute(text("SELECT kind FROM scheduled_jobs"))).scalars().all()
        assert RETENTION_JOB in kinds, name
