"""Request/event context that follows work from HTTP through the outbox and Kafka into consumers.

Request, correlation and causation ids are our own context variables; the trace context is
OpenTelemetry's (pena.telemetry), read here as a W3C traceparent for the events a unit of work writes."""

from __future__ import annotations

from contextvars import ContextVar

from opentelemetry import trace

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_traceparent() -> str | None:
    """The W3C traceparent of the current span (ours, or a caller's passed on), None outside any trace."""
    return format_traceparent(trace.get_current_span().get_span_context())


def format_traceparent(span: trace.SpanContext) -> str | None:
    if not span.is_valid:
        return None
    return f"00-{span.trace_id:032x}-{span.span_id:016x}-{int(span.trace_flags):02x}"


def current_causation_id() -> str | None:
    return causation_id_var.get()
