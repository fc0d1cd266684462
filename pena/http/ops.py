"""Operations routes every app serves: liveness, readiness, Prometheus metrics, the service clock
(dev/test), and the dead letters of the services in the process (list and replay).

Each declares its policy (pena.access): the probes and metrics are public (no token: the orchestrator
and Prometheus call them, and they reveal no record); the clock, read or moved, needs `ops:clock`, and
the dead letters `ops:deadletters`, both with national reach (an admin).

Every answer is typed (the `*Read` models below, each with an example), /readyz's 503 included: its
body is the same ReadinessRead as the 200's, with the failing check marked `down`."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from pena import metrics
from pena.access import policy, public
from pena.auth import Principal
from pena.clock import OffsetClock
from pena.consumer import replay_dead_letters
from pena.deadletters import parked_dead_letters
from pena.durations import parse_duration
from pena.http.bodies import StrictModel
from pena.http.deps import get_runtime
from pena.outbox import pending_count
from pena.problems import Problem
from pena.settings import Settings

ops = APIRouter(tags=["operations"])
ClockOperator = Annotated[Principal, policy("ops:clock", "national")]
DeadLetterOperator = Annotated[Principal, policy("ops:deadletters", "national")]
NOW = "2026-11-30T02:15:00Z"


class HealthRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})
    status: Literal["ok"]


class ReadinessCheck(BaseModel):
    status: Literal["ok", "down"]
    outbox_pending: int | None = Field(default=None, description="events not yet published (databases that answer)")
    error: str | None = Field(default=None, description="the error's class name, when down")


class ReadinessRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {
                        "db:participants": {"status": "ok", "outbox_pending": 0},
                        "kafka": {"status": "ok"},
                    },
                }
            ]
        }
    )
    status: Literal["ready", "not ready"]
    checks: dict[str, ReadinessCheck] = Field(
        description="`db:<service>` per service database; `kafka` (reported, never fatal) where Kafka is used"
    )


NOT_READY_EXAMPLE = {
    "status": "not ready",
    "checks": {"db:participants": {"status": "down", "error": "ConnectionRefusedError"}, "kafka": {"status": "ok"}},
}


class ClockRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"now": "2027-02-28T09:15:00+00:00", "offset": "P3M"}]})
    now: datetime
    offset: str | None = Field(description="ISO-8601 duration the clock runs ahead of real time; null: real time")


class DeadLetterRead(BaseModel):
    service: str
    id: int
    consumer: str
    event_id: str | None
    event_type: str | None
    origin: str = Field(description="topic/partition/offset (Kafka) or the in-process bus")
    error: str
    attempts: int
    created_at: datetime
    replayed_at: datetime | None
    replay_outcome: str | None


class DeadLettersRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "service": "monev",
                            "id": 12,
                            "consumer": "monev",
                            "event_id": "0b9e7c1e-5d8f-4f57-9a43-2f1f4c8e6b21",
                            "event_type": "training.completed",
                            "origin": "pena.training.events/2/1841",
                            "error": "RetryLater: batch b-7 not known yet",
                            "attempts": 5,
                            "created_at": NOW,
                            "replayed_at": None,
                            "replay_outcome": None,
                        }
                    ]
                }
            ]
        }
    )
    items: list[DeadLetterRead]


class ReplayRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"results": {"12": "applied", "13": "failed: RetryLater"}}]}
    )
    results: dict[str, str] = Field(description="dead letter id -> outcome (a still-failing letter stays parked)")


@ops.get("/healthz", summary="Liveness: the process answers", dependencies=[public()])
async def healthz() -> HealthRead:
    return HealthRead(status="ok")


@ops.get(
    "/readyz",
    summary="Readiness: every service database answers (and Kafka, where used)",
    dependencies=[public()],
    response_model=ReadinessRead,
    responses={
        503: {
            "model": ReadinessRead,
            "description": "A service database does not answer: take this replica out of the load balancer",
            "content": {"application/json": {"example": NOT_READY_EXAMPLE}},
        }
    },
)
async def readyz(request: Request) -> Response:
    runtime = get_runtime(request)
    checks: dict[str, Any] = {}
    ready = True
    for name, svc in runtime.services.items():
        try:
            await svc.db.ping()
            async with svc.db.transaction() as session:
                pending = await pending_count(session)
            metrics.OUTBOX_PENDING.labels(name).set(pending)
            checks[f"db:{name}"] = {"status": "ok", "outbox_pending": pending}
        except Exception as exc:
            ready = False
            checks[f"db:{name}"] = {"status": "down", "error": type(exc).__name__}
    if runtime.kafka_publisher is not None:
        # reported, but not fatal: writes still succeed while Kafka is away (the outbox holds them),
        # so a broker outage must not take every API replica out of the load balancer
        ok = await _kafka_reachable(runtime.settings)
        checks["kafka"] = {"status": "ok" if ok else "down"}
    body = {"status": "ready" if ready else "not ready", "checks": checks}
    return JSONResponse(body, status_code=200 if ready else 503)


async def _kafka_reachable(settings: Settings) -> bool:
    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=1.0)
        writer.close()
        return True
    except (OSError, TimeoutError, ValueError):
        return False


@ops.get("/metrics", summary="Prometheus metrics", include_in_schema=False, dependencies=[public()])
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class ClockOffset(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"offset": "P3M"}, {"offset": None}]})
    offset: str | None  # ISO-8601 duration, e.g. P3M; null resets to real time


@ops.put("/v1/ops/clock", summary="Move the service clock (dev/test only; production refuses)")
async def set_clock(body: ClockOffset, request: Request, _: ClockOperator) -> ClockRead:
    runtime = get_runtime(request)
    if not runtime.settings.allow_clock_control or not isinstance(runtime.clock, OffsetClock):
        raise Problem(403, "Forbidden", "clock control is disabled in these settings", type_="clock-control-disabled")
    if body.offset:
        try:
            parse_duration(body.offset)
        except ValueError as exc:
            raise Problem(
                422,
                "Validation failed",
                str(exc),
                type_="validation",
                errors=[{"field": "offset", "rule": "iso8601_duration", "message": str(exc)}],
            ) from exc
    runtime.clock.offset = body.offset
    return ClockRead(offset=body.offset, now=runtime.clock.now())


@ops.get("/v1/ops/clock", summary="The service clock (its time and demo offset)")
async def get_clock_route(request: Request, _: ClockOperator) -> ClockRead:
    clock = get_runtime(request).clock
    return ClockRead(now=clock.now(), offset=getattr(clock, "offset", None))


@ops.get("/v1/ops/dead-letters", summary="Dead letters of the services in this process")
async def list_dead_letters(request: Request, _: DeadLetterOperator, include_replayed: bool = False) -> DeadLettersRead:
    items = []
    for name, svc in get_runtime(request).services.items():
        async with svc.db.transaction() as session:
            items += [{"service": name, **row} for row in await parked_dead_letters(session, include_replayed)]
    return DeadLettersRead.model_validate({"items": items})


@ops.post("/v1/ops/dead-letters/{service}/replay", summary="Replay a service's parked dead letters")
async def replay(service: str, request: Request, _: DeadLetterOperator) -> ReplayRead:
    runtime = get_runtime(request)
    svc = runtime.services.get(service)
    if svc is None or svc.subscriber is None:
        raise Problem(404, "Not found", f"no consuming service {service!r} in this process", type_="not-found")
    results = await replay_dead_letters(svc.subscriber)
    return ReplayRead(results={str(letter): outcome for letter, outcome in results.items()})
