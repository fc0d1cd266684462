"""HTTP plumbing shared by every service: app factory, request context middleware (request and
correlation ids, traceparent, body-size cap, metrics), health, readiness,
metrics, dead-letter and clock operations, and the dependencies routes use."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pena import metrics
from pena.auth import Principal, require
from pena.clock import Clock, OffsetClock
from pena.consumer import replay_dead_letters
from pena.context import correlation_id_var, new_traceparent, request_id_var, traceparent_var
from pena.durations import parse_duration
from pena.outbox import pending_count
from pena.problems import Problem, field_error, install_problem_handlers, problem_response
from pena.runtime import Runtime, ServiceRuntime
from pena.settings import Settings
from pena.tables import dead_letters

access_log = logging.getLogger("pena.access")


class StrictModel(BaseModel):
    """Base for request bodies: unknown fields are refused (no mass assignment)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


# ------------------------------------------------------------------ dependencies


# dependencies are `async def` although they do not await: FastAPI runs a plain `def` dependency in
# a worker thread, a thread hop per dependency per request


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def service_runtime(name: str):
    async def dependency(request: Request) -> ServiceRuntime:
        return get_runtime(request).services[name]

    return dependency


def session_for(name: str):
    """The request's one transaction on the service's database: commits after the route returns
    (before the response is sent, so a failed commit is the caller's error), rolls back on error."""

    async def dependency(request: Request) -> AsyncIterator[AsyncSession]:
        async with get_runtime(request).services[name].db.transaction() as session:
            yield session

    return dependency


def session_dependency(name: str) -> Any:
    return Depends(session_for(name), scope="function")


async def get_clock(request: Request) -> Clock:
    return get_runtime(request).clock


async def get_settings_dep(request: Request) -> Settings:
    return get_runtime(request).settings


ClockDep = Annotated[Clock, Depends(get_clock)]
SettingsDep = Annotated[Settings, Depends(get_settings_dep)]


# ------------------------------------------------------------------ middleware


class RequestContextMiddleware:
    """Pure ASGI (no per-request task switch): ids, traceparent, size cap, metrics, access log."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.max_upload_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode().lower(): v.decode() for k, v in scope.get("headers", [])}
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        tokens = (
            request_id_var.set(request_id),
            correlation_id_var.set(headers.get("x-correlation-id") or request_id),
            traceparent_var.set(new_traceparent(headers.get("traceparent"))),
        )
        started = time.perf_counter()
        status_holder = {"status": 500}

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status_holder["status"] = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [
                    *message["headers"],
                    (b"x-request-id", request_id.encode()),
                    (b"x-correlation-id", (correlation_id_var.get() or "").encode()),
                ]
            await send(message)

        try:
            # file uploads (multipart: the participants CSV import) may be larger than other bodies
            multipart = headers.get("content-type", "").startswith("multipart/form-data")
            cap = self.max_upload if multipart else self.max_body
            early = self._refuse_early(headers, scope, cap)
            if early is not None:
                await early(scope, receive, send_wrapper)
            else:
                await self.app(scope, self._capped(receive, cap), send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            metrics.HTTP_REQUESTS.labels(scope["method"], path, str(status_holder["status"])).inc()
            metrics.HTTP_LATENCY.labels(scope["method"], path).observe(elapsed)
            if path not in ("/healthz", "/readyz", "/metrics"):
                access_log.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "route": path,
                        "status": status_holder["status"],
                        "duration_ms": round(elapsed * 1000, 1),
                    },
                )
            for var, token in zip((request_id_var, correlation_id_var, traceparent_var), tokens, strict=True):
                var.reset(token)

    def _refuse_early(self, headers: dict[str, str], scope: Scope, cap: int) -> Any:
        length = headers.get("content-length")
        if length and length.isdigit() and int(length) > cap:
            return problem_response(
                413,
                "Payload too large",
                f"request bodies are limited to {cap} bytes",
                type_="payload-too-large",
            )
        return None

    def _capped(self, receive: Receive, cap: int) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > cap:
                    raise Problem(
                        413,
                        "Payload too large",
                        f"request bodies are limited to {cap} bytes",
                        type_="payload-too-large",
                    )
            return message

        return wrapped


# ------------------------------------------------------------------ operations routes

ops = APIRouter(tags=["operations"])


@ops.get("/healthz", summary="Liveness: the process answers")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@ops.get("/readyz", summary="Readiness: every service database answers (and Kafka, where used)")
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
    import asyncio

    host, _, port = settings.kafka_bootstrap.split(",")[0].rpartition(":")
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, int(port)), timeout=1.0)
        writer.close()
        return True
    except (OSError, TimeoutError, ValueError):
        return False


@ops.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
async def metrics_endpoint() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


class ClockOffset(StrictModel):
    offset: str | None  # ISO-8601 duration, e.g. P3M; null resets to real time


@ops.put("/v1/ops/clock", summary="Move the service clock (dev/test only; production refuses)")
async def set_clock(
    body: ClockOffset, request: Request, _: Annotated[Principal, Depends(require("ops:clock"))]
) -> dict[str, Any]:
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
    return {"offset": body.offset, "now": runtime.clock.now().isoformat()}


@ops.get("/v1/ops/clock", summary="The service clock")
async def get_clock_route(request: Request) -> dict[str, Any]:
    clock = get_runtime(request).clock
    return {"now": clock.now().isoformat(), "offset": getattr(clock, "offset", None)}


@ops.get("/v1/ops/dead-letters", summary="Dead letters of the services in this process")
async def list_dead_letters(
    request: Request, _: Annotated[Principal, Depends(require("ops:deadletters"))], include_replayed: bool = False
) -> dict[str, Any]:
    items = []
    for name, svc in get_runtime(request).services.items():
        async with svc.db.transaction() as session:
            query = select(
                dead_letters.c.id,
                dead_letters.c.consumer,
                dead_letters.c.event_id,
                dead_letters.c.event_type,
                dead_letters.c.origin,
                dead_letters.c.error,
                dead_letters.c.attempts,
                dead_letters.c.created_at,
                dead_letters.c.replayed_at,
                dead_letters.c.replay_outcome,
            )
            if not include_replayed:
                query = query.where(dead_letters.c.replayed_at.is_(None))
            for row in (await session.execute(query.order_by(dead_letters.c.id).limit(500))).all():
                items.append({"service": name, **row._asdict()})
    return {"items": items}


@ops.post("/v1/ops/dead-letters/{service}/replay", summary="Replay a service's parked dead letters")
async def replay(
    service: str, request: Request, _: Annotated[Principal, Depends(require("ops:deadletters"))]
) -> dict[str, Any]:
    runtime = get_runtime(request)
    svc = runtime.services.get(service)
    if svc is None or svc.subscriber is None:
        raise Problem(404, "Not found", f"no consuming service {service!r} in this process", type_="not-found")
    return {"results": await replay_dead_letters(svc.subscriber)}


# ------------------------------------------------------------------ input PostgreSQL cannot store

NUL = "\x00"


def _nul_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths (list items by index) of the strings and keys in parsed JSON that hold U+0000."""
    if isinstance(value, str):
        return [path] if NUL in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            found += [inner] if NUL in str(key) else _nul_paths(item, inner)
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, f"{path}.{i}" if path else str(i))]
    return []


def uploaded_text(raw: bytes, *, field: str, what: str = "the CSV") -> str:
    """An uploaded text file (CSV) as a string: UTF-8, a byte-order mark dropped, and free of U+0000
    (such a file is damaged, not data); else a 422 naming `field`. JSON bodies are checked by
    `refuse_nul_characters`, files are not, so each upload decodes through here."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise field_error(field, "utf8", f"{what} must be UTF-8 encoded") from exc
    if NUL in text:
        raise field_error(field, "nul_character", f"{what} contains the NUL character (U+0000)")
    return text


async def refuse_nul_characters(request: Request) -> None:
    """PostgreSQL text cannot hold U+0000: a value carrying it is refused at the door with its place
    named (422), instead of failing deep in a use case as a database error."""
    places = [("query", k) for k, v in request.query_params.multi_items() if NUL in k or NUL in v]
    places += [("path", k) for k, v in request.path_params.items() if isinstance(v, str) and NUL in v]
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()  # cached: the route reads the same bytes
        if b"\\u0000" in body:  # JSON must escape U+0000; parse only when it may be there
            try:
                places += [("body", p) for p in _nul_paths(json.loads(body))]
            except ValueError:
                pass  # malformed JSON: the route's own validation answers it
    if places:
        raise Problem(
            422,
            "Validation failed",
            "text may not contain the NUL character (U+0000)",
            type_="validation",
            errors=[
                {"field": field, "in": where, "rule": "nul_character", "message": "contains U+0000"}
                for where, field in places
            ],
        )


# ------------------------------------------------------------------ app factory


def create_app(runtime: Runtime, *, title: str = "PENA platform API") -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    names = ", ".join(runtime.services)
    app = FastAPI(
        title=title,
        version="1.0.0",
        lifespan=lifespan,
        description=f"Services in this process: {names}. Authenticate with a bearer JWT "
        "(`pena token --role admin` prints a local dev token). Errors are RFC 9457 problem+json.",
        dependencies=[Depends(refuse_nul_characters)],
    )
    app.state.runtime = runtime
    app.state.settings = runtime.settings
    install_problem_handlers(app)
    app.add_middleware(RequestContextMiddleware, settings=runtime.settings)
    app.include_router(ops)
    for svc in runtime.services.values():
        for router in svc.definition.routers:
            app.include_router(router)
    return app
