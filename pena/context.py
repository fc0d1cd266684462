"""Request/event context that follows work from HTTP through the outbox and Kafka into consumers.

Request, correlation and causation ids are our own context variables; the trace context is
OpenTelemetry's (pena.telemetry), read here as a W3C traceparent for the events a unit of work writes."""

from __future__ import annotations

import re
from contextvars import ContextVar

from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)
# tracing off: the caller's (or the consumed event's) W3C traceparent, passed on as it came
passed_traceparent_var: ContextVar[str | None] = ContextVar("passed_traceparent", default=None)
_TRACEPARENT = re.compile(r"00-(?!0{32})[0-9a-f]{32}-(?!0{16})[0-9a-f]{16}-[0-9a-f]{2}")


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span, else the one passed on while tracing is off, else None."""
    return format_traceparent(trace.get_current_span().get_span_context()) or passed_traceparent_var.get()


def valid_traceparent(value: str | None) -> str | None:
    """`value` when it is a W3C traceparent (version 00) with non-zero ids, else None."""
    return value if value and _TRACEPARENT.fullmatch(value) else None


def format_traceparent(span: trace.SpanContext) -> str | None:
    if not span.is_valid:
        return None
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{int(span.trace_flags):02x}"


def current_causation_id() -> str | None:
    return causation_id_var.get()
