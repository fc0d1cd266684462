"""The request context middleware: request and correlation ids, the caller's W3C traceparent (when
tracing is off; on, the OpenTelemetry middleware outside this one owns it), the body-size cap, request
metrics and the access log (the rate limit is per authenticated subject: pena/ratelimit.py)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pena import metrics
from pena.context import correlation_id_var, passed_traceparent_var, request_id_var, valid_traceparent
from pena.problems import Problem, problem_response
from pena.settings import Settings

access_log = logging.getLogger("pena.access")
_READ_HEADERS = frozenset({b"x-request-id", b"x-correlation-id", b"traceparent", b"content-type", b"content-length"})


class RequestContextMiddleware:
    """Pure ASGI (no per-request task switch): ids, traceparent, size cap, metrics, access log."""

    def __init__(self, app: ASGIApp, settings: Settings, *, continue_traces: bool = True) -> None:
        self.app = app
        self.continue_traces = continue_traces  # False when the app's requests get server spans
        self.max_body = settings.max_body_bytes
        self.max_upload = settings.max_upload_bytes
        self._series_cache: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # only the headers read here are decoded
        headers = {
            name.decode(): v.decode() for k, v in scope.get("headers", ()) if (name := k.lower()) in _READ_HEADERS
        }
        request_id = headers.get("x-request-id") or uuid.uuid4().hex
        tokens = (
            request_id_var.set(request_id),
            correlation_id_var.set(headers.get("x-correlation-id") or request_id),
        )
        # tracing off: the caller's trace context goes on, unchanged, into the events of this request
        traceparent = valid_traceparent(headers.get("traceparent")) if self.continue_traces else None
        trace_token = passed_traceparent_var.set(traceparent) if traceparent else None
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
            counted, timed = self._series(scope["method"], path, status_holder["status"])
            counted.inc()
            timed.observe(elapsed)
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
            for var, token in zip((request_id_var, correlation_id_var), tokens, strict=True):
                var.reset(token)
            if trace_token is not None:
                passed_traceparent_var.reset(trace_token)

    def _series(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        """The request counter's and latency histogram's series of (method, route, status), looked up
        once (prometheus_client's `labels()` takes a lock and builds the key on every call); routes are
        templates (or "unmatched"), so the cache is as bounded as the metrics themselves."""
        key = (method, route, status)
        found = self._series_cache.get(key)
        if found is None:
            found = self._series_cache[key] = (
                metrics.HTTP_REQUESTS.labels(method, route, str(status)),
                metrics.HTTP_LATENCY.labels(method, route),
            )
        return found

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
