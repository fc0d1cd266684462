"""Request/event context that follows work from HTTP through the outbox and Kafka into consumers."""

from __future__ import annotations

import os
import uuid
from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)
correlation_id_var: ContextVar[str | None] = ContextVar("correlation_id", default=None)
traceparent_var: ContextVar[str | None] = ContextVar("traceparent", default=None)
causation_id_var: ContextVar[str | None] = ContextVar("causation_id", default=None)


def current_correlation_id() -> str | None:
    return correlation_id_var.get()


def current_traceparent() -> str | None:
    return traceparent_var.get()


def current_causation_id() -> str | None:
    return causation_id_var.get()


def new_traceparent(parent: str | None = None) -> str:
    """W3C traceparent: keep the trace id of the parent, new span id."""
    trace_id = parent.split("-")[1] if parent and parent.count("-") == 3 else uuid.uuid4().hex
    return f"00-{trace_id}-{os.urandom(8).hex()}-01"
