"""The app factory: one FastAPI app for the services of a runtime (one service, or all four in
`pena dev`), with problem+json errors, the request context middleware, NUL screening, the
operations routes and the audit API."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI

from pena import telemetry
from pena.http.audit import audit
from pena.http.middleware import RequestContextMiddleware
from pena.http.openapi import document_the_wire, operation_id
from pena.http.ops import ops
from pena.http.schemas import schemas
from pena.http.screening import refuse_nul_characters
from pena.problems import install_problem_handlers
from pena.runtime import Runtime


def create_app(runtime: Runtime, *, title: str = "PENA platform API", api: bool = True) -> FastAPI:
    """`api=False` (the `workers` role of `pena serve`): the operations routes only (health,
    readiness, metrics, clock, dead letters), no service API, audit or schema routes."""

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
        generate_unique_id_function=operation_id,
        # FastAPI's own OpenTelemetry support stays off (it would follow any global provider or
        # FASTAPI_OTEL_AUTO_CONFIGURE): tracing is pena.telemetry's, the request path untouched when off
        telemetry={"tracing": False, "metrics": False, "logs": False, "auto_configure": False},
    )
    app.state.runtime = runtime
    app.state.settings = runtime.settings
    install_problem_handlers(app)
    # tracing on: the OpenTelemetry ASGI middleware (outermost) makes each request's server span
    traced = telemetry.instrument_app(app)
    app.add_middleware(RequestContextMiddleware, settings=runtime.settings, continue_traces=not traced)
    if api:
        # the services' routes first: FastAPI matches a request against the routes in order (every
        # included router's, twice for the one that matches), so the API's requests skip the
        # operations routes; no path is shared, so which route answers does not change
        for svc in runtime.services.values():
            for router in svc.definition.routers:
                app.include_router(router)
    app.include_router(ops)
    if api:
        app.include_router(audit)  # every service's audit log (pena/http/audit.py)
        app.include_router(schemas)  # the event schemas at their dataschema URLs (pena/http/schemas.py)
    document_the_wire(app)  # bearer scheme, problem+json answers, text/csv (pena/http/openapi.py)
    return app
