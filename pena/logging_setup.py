"""JSON logs via structlog, with request and correlation ids from context, the OpenTelemetry trace and
span ids when a span is active, and a last-guard processor that masks anything shaped like a 16-digit
NIK or KK number, whatever the code logged."""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog
from opentelemetry import trace

from pena.context import correlation_id_var, passed_traceparent_var, request_id_var

_SIXTEEN_DIGITS = re.compile(r"(?<!\d)\d{16}(?!\d)")
_STD_ATTRS = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def redact(value: Any) -> Any:
    if isinstance(value, str):
        return _SIXTEEN_DIGITS.sub("[REDACTED-16]", value)
    if isinstance(value, dict):
        return {k: redact(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


def _redact_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    return {k: redact(v) for k, v in event_dict.items()}


def _context_ids(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if (rid := request_id_var.get()) and "request_id" not in event_dict:
        event_dict["request_id"] = rid
    if (cid := correlation_id_var.get()) and "correlation_id" not in event_dict:
        event_dict["correlation_id"] = cid
    if "trace_id" in event_dict:
        return event_dict
    span = trace.get_current_span().get_span_context()
    if span.is_valid:  # the ids a tracing backend shows (W3C hex)
        event_dict["trace_id"] = f"{span.trace_id:032x}"
        event_dict["span_id"] = f"{span.span_id:016x}"
    elif passed := passed_traceparent_var.get():  # tracing off: the caller's trace
        event_dict["trace_id"], event_dict["span_id"] = passed.split("-")[1:3]
    return event_dict


def _extras(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    record = event_dict.get("_record")
    if record is not None:
        for key, value in record.__dict__.items():
            if key not in _STD_ATTRS and not key.startswith("_") and key not in event_dict:
                event_dict[key] = value
    return event_dict


def configure_logging(level: str = "INFO", json_output: bool = True) -> None:
    renderer: Any = structlog.processors.JSONRenderer() if json_output else structlog.dev.ConsoleRenderer()
    shared: list[Any] = [
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        _context_ids,
    ]
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, _extras],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            _redact_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )
