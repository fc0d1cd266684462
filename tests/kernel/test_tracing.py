"""Tracing in the kernel (pena.telemetry): trace ids in the JSON logs, the relay's send spans when the
broker refuses a batch, the OTLP export reaching a collector, and what is left when tracing is off
(no span, the caller's trace context passed on). The whole path across services is in
tests/e2e/test_trace_across_services.py."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from pena import telemetry
from pena.context import current_traceparent
from pena.contracts import BY_NAME
from pena.envelope import CloudEvent
from pena.logging_setup import configure_logging
from pena.outbox import OutboxMessage, OutboxRelay
from pena.settings import Settings
from tests.monev.support import announce_completions, completion, monev, register, tasks
from tests.support import drain_relay, outbox_events, participants_publisher, training_publisher

CALLER = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"


def an_event(traceparent: str | None = CALLER) -> CloudEvent:
    return CloudEvent(
        id="ev-1",
        source="/pena/training",
        type=BY_NAME["training.completed"].type,
        time=datetime(2026, 1, 5, tzinfo=UTC),
        traceparent=traceparent,
    )


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """The project's JSON log configuration, written to a buffer (the root logger restored afterwards)."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    configure_logging("INFO", json_output=True)
    buffer = io.StringIO()
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(buffer)
    try:
        yield buffer
    finally:
        root.handlers[:], level = saved
        root.setLevel(level)


def test_log_lines_carry_the_trace_and_span_ids_of_the_active_span(spans: InMemorySpanExporter, json_log) -> None:
    log = logging.getLogger("pena.test")
    log.info("before")
    with telemetry.consuming(an_event(), "monev"):
        log.info("handling", extra={"event_id": "ev-1"})
    log.info("after")

    [span] = spans.get_finished_spans()
    before, handling, after = (json.loads(line) for line in json_log.getvalue().splitlines())
    assert handling["event"] == "handling"
    assert handling["trace_id"] == f"{span.context.trace_id:032x}" == CALLER.split("-")[1]
    assert handling["span_id"] == f"{span.context.span_id:016x}"
    assert "trace_id" not in before
    assert "trace_id" not in after


def test_with_tracing_off_no_span_is_made_and_the_callers_trace_is_passed_on(json_log) -> None:
    assert not telemetry.enabled()
    with telemetry.sending("topic", [{"id": "ev-1", "traceparent": CALLER}]) as traced:
        assert traced is None  # the stored envelopes are sent as they are
    with telemetry.consuming(an_event(), "monev"):
        assert current_traceparent() == CALLER  # what the handler writes carries the caller's trace
        logging.getLogger("pena.test").info("handling")
    with telemetry.consuming(an_event(traceparent=None), "monev"):
        assert current_traceparent() is None
    assert json.loads(json_log.getvalue())["trace_id"] == CALLER.split("-")[1]


class RefusingBroker:
    async def publish(self, messages: list[OutboxMessage]) -> None:
        raise ConnectionError("broker away")


async def test_a_refused_batch_ends_its_send_spans_with_the_error(spans: InMemorySpanExporter, make_runtime) -> None:
    runtime = await make_runtime([training_publisher])
    await announce_completions(
        runtime, *(completion(f"p-{i}", datetime(2025, 11, 30, tzinfo=UTC)) for i in range(2)), drain=False
    )
    relay = OutboxRelay(runtime.service("training").db, RefusingBroker(), service="training", destination="t.events")
    with pytest.raises(ConnectionError):
        await relay.run_once()

    sent = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert [s.name for s in sent] == ["send t.events", "send t.events"]
    assert {s.status.status_code for s in sent} == {StatusCode.ERROR}
    assert all(e.name == "exception" for s in sent for e in s.events)
    assert all(s.parent is None for s in sent)  # rows written outside any trace: the send starts one


class Collector(BaseHTTPRequestHandler):
    received: list[tuple[str, str, bytes]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Collector.received.append((self.path, self.headers["Content-Type"], body))
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_otlp_export_reaches_the_collector_named_in_the_settings(settings: Settings) -> None:
    """PENA_OTEL_EXPORTER=otlp with PENA_OTEL_ENDPOINT: spans arrive as OTLP/HTTP protobuf at
    <endpoint>/v1/traces, named for the service."""
    server = HTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    exporting = settings.model_copy(
        update={"otel_exporter": "otlp", "otel_endpoint": f"http://127.0.0.1:{server.server_port}"}
    )
    try:
        telemetry.configure(exporting, ["monev"])
        assert telemetry.enabled()
        with telemetry.consuming(an_event(), "monev"):
            pass
        telemetry.stop()  # flushes the batch processor
    finally:
        telemetry.stop()
        server.shutdown()
    [(path, content_type, body)] = Collector.received
    assert path == "/v1/traces"
    assert content_type == "application/x-protobuf"
    assert b"pena-monev" in body
    assert f"process {an_event().type}".encode() in body


async def test_on_the_in_process_bus_the_handler_runs_in_the_trace_the_event_was_written_in(
    spans: InMemorySpanExporter, make_runtime
) -> None:
    """`pena dev`: the relay hands events to the consumers directly, through the same spans as on Kafka."""
    runtime = await make_runtime([training_publisher, participants_publisher, monev])
    await register(runtime, "p-1")
    with telemetry.tracer().start_as_current_span("closing the batch") as closing:
        await announce_completions(runtime, completion("p-1", datetime(2025, 11, 30, tzinfo=UTC)), drain=False)
    assert await drain_relay(runtime, "training") == 1
    [task] = await tasks(runtime)
    assert task.participant_id == "p-1"

    finished = {s.context.span_id: s for s in spans.get_finished_spans()}
    completed_type = BY_NAME["training.completed"].type
    [process] = [s for s in finished.values() if s.name == f"process {completed_type}"]
    assert process.parent is not None
    send = finished[process.parent.span_id]
    assert send.kind is SpanKind.PRODUCER
    assert send.parent is not None
    assert send.parent.span_id == closing.get_span_context().span_id
    assert process.context.trace_id == closing.get_span_context().trace_id
    [scheduled] = await outbox_events(runtime, "monev", "monev.scheduled")
    assert scheduled["traceparent"].split("-")[1:3] == [
        f"{process.context.trace_id:032x}",
        f"{process.context.span_id:016x}",
    ]
