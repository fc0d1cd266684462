"""Two small services used to test the kernel: a publisher that stores a "thing" and announces it
with training.completed through the outbox, and a consumer that records each effect it applies."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Header
from fastapi.responses import JSONResponse
from pydantic import Field
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, func, insert, select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal, require
from pena.consumer import Delivery, PoisonEvent
from pena.contracts import TrainingCompleted
from pena.definition import ServiceDefinition
from pena.http.bodies import StrictModel
from pena.http.deps import session_dependency
from pena.idempotency import claim_key, store_response
from pena.outbox import emit
from pena.scheduler import Job, schedule_job

PUBLISHER = "training"  # the contract's owning service: its outbox publishes training.completed
CONSUMER = "probe"

pub_meta = MetaData()
things = Table(
    "probe_things",
    pub_meta,
    Column("id", String(40), primary_key=True),
    Column("participant_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
)

con_meta = MetaData()
effects = Table(
    "probe_effects",
    con_meta,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("participant_id", String(40), nullable=False),
    Column("seq", Integer, nullable=False),
    Column("batch_id", String(40), nullable=False),
)
announcements = Table(
    "probe_announcements",
    con_meta,
    Column("id", BigInteger, primary_key=True, autoincrement=True),
    Column("job_key", String(200), nullable=False),
)


def completed(participant_id: str, seq: int, batch_id: str = "b1") -> TrainingCompleted:
    return TrainingCompleted(
        participant_id=participant_id,
        batch_id=batch_id,
        centre_id="c1",
        business_field="kuliner",
        region_code="1371011001",
        completed_at=datetime(2026, 1, 1, tzinfo=UTC),
        attendance_rate=1.0,
        sessions_attended=seq,
        sessions_total=max(seq, 1),
    )


async def create_thing(session: AsyncSession, participant_id: str, seq: int, batch_id: str = "b1") -> str:
    thing_id = str(uuid.uuid4())
    await session.execute(insert(things).values(id=thing_id, participant_id=participant_id, seq=seq))
    await emit(
        session,
        "training.completed",
        completed(participant_id, seq, batch_id),
        subject=participant_id,
        time=datetime.now(UTC),
    )
    return thing_id


async def on_completed(session: AsyncSession, delivery: Delivery) -> None:
    payload: TrainingCompleted = delivery.payload
    if payload.batch_id == "poison":
        raise RuntimeError("this handler cannot take poison batches")
    if payload.batch_id == "refused":  # a rule of the consumer's says this event can never apply
        raise PoisonEvent("transition_refused: batch 'refused' can never be applied")
    await session.execute(
        insert(effects).values(
            event_id=delivery.event.id,
            participant_id=payload.participant_id,
            seq=payload.sessions_attended,
            batch_id=payload.batch_id,
        )
    )


async def announce(session: AsyncSession, job: Job, clock: object) -> None:
    await session.execute(insert(announcements).values(job_key=job.key))


async def effect_count(session: AsyncSession) -> int:
    return int((await session.execute(select(func.count()).select_from(effects))).scalar_one())


router = APIRouter()
Session = Annotated[AsyncSession, session_dependency(PUBLISHER)]


class ThingIn(StrictModel):
    participant_id: str = Field(min_length=1, max_length=40)
    seq: int = Field(ge=0)


@router.post("/v1/probe/things", status_code=201)
async def post_thing(
    body: ThingIn,
    session: Session,
    principal: Annotated[Principal, Depends(require("training:write"))],
    idempotency_key: Annotated[str | None, Header()] = None,
) -> JSONResponse:
    client = principal.client_id or principal.subject
    if idempotency_key:
        stored = await claim_key(session, client_id=client, key=idempotency_key, body=body.model_dump())
        if stored:
            return JSONResponse(stored.body, status_code=stored.status)
    thing_id = await create_thing(session, body.participant_id, body.seq)
    answer = {"id": thing_id}
    if idempotency_key:
        await store_response(session, client_id=client, key=idempotency_key, status=201, body=answer)
    return JSONResponse(answer, status_code=201)


async def schedule(session: AsyncSession, key: str, due_at: datetime) -> bool:
    return await schedule_job(session, kind="probe.announce", key=key, due_at=due_at)


publisher = ServiceDefinition(name=PUBLISHER, metadata=pub_meta, routers=[router])
consumer = ServiceDefinition(
    name=CONSUMER, metadata=con_meta, handlers={"training.completed": on_completed}, jobs={"probe.announce": announce}
)
