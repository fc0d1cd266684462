"""Request/event context that follows work from HTTP through the outbox and Kafka into consumers."""

from __future__ import annotations

import os
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
    if parent and parent.count("-") == 3:
        return f"00-{parent.split('-')[1]}-{os.urandom(8).hex()}-01"
    ids = os.urandom(24).hex()  # a new trace: trace id and span id from one call
    return f"00-{ids[:32]}-{ids[32:]}-01"
