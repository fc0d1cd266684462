"""Tracing with OpenTelemetry: one trace from an HTTP request through the outbox, the relay, Kafka and
the consumer's handler to the events that handler writes.

- HTTP: the maintained FastAPI instrumentation (`opentelemetry-instrumentation-fastapi`, a pure ASGI
  middleware) makes the server span; database statements get spans from
  `opentelemetry-instrumentation-sqlalchemy` on each service's engine.
- Outbox: an event row stores the W3C `traceparent` of the span current when it was written
  (pena.envelope via pena.context.current_traceparent).
- Relay: one PRODUCER span per event (`send <topic>`), a child of the stored traceparent, lasting
  until the broker acknowledged the batch; the record carries that span's traceparent, in the
  envelope and in the `traceparent` header alike (the stored row keeps the original).
- Consumer: the handler runs in a CONSUMER span (`process <event type>`), a child of the record's
  traceparent; the statements and events of the handler belong to it.

Export is off by default (`PENA_OTEL_EXPORTER=none`): no SDK is set up, no span is made, and the
request path costs what the OpenTelemetry API's context costs (a caller's traceparent is passed on to
the events unchanged). Spans are made by this module's tracer provider, not by whatever global one
a library set, so tests switch tracing on and off with `start`/`stop`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from pena.context import format_traceparent, passed_traceparent_var, valid_traceparent
from pena.settings import Settings

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.sampling import Sampler
    from sqlalchemy.ext.asyncio import AsyncEngine

    from pena.envelope import CloudEvent

log = logging.getLogger("pena.telemetry")
TRACER_NAME = "pena"
_W3C = TraceContextTextMapPropagator()
# the operations routes are polled by probes and Prometheus: no spans for them
UNTRACED_URLS = "/healthz$,/readyz$,/metrics$"


@dataclass
class _State:
    provider: TracerProvider | None = None
    tracer: trace.Tracer = field(default_factory=trace.NoOpTracer)
    engines: list[AsyncEngine] = field(default_factory=list)


_state = _State()
# the event whose CONSUMER span is current: a handler entering the event's context again (a batch
# handler's `Delivery.context()`) stays in that span instead of opening a sibling
_processing: ContextVar[str | None] = ContextVar("pena_processing_event", default=None)


def enabled() -> bool:
    """Whether spans are made (an SDK tracer provider was started)."""
    return _state.provider is not None


def tracer() -> trace.Tracer:
    """The kernel's tracer (a no-op one while tracing is off), for a span of one's own."""
    return _state.tracer


def service_name(settings: Settings, services: Sequence[str]) -> str:
    if settings.otel_service_name:
        return settings.otel_service_name
    return f"pena-{services[0]}" if len(services) == 1 else "pena"


def configure(settings: Settings, services: Sequence[str]) -> None:
    """Starts tracing as the settings say (once per process; nothing when the exporter is `none`). The
    provider is not made OpenTelemetry's global one: only the kernel's spans and the instrumentations
    it applies (FastAPI, SQLAlchemy) use it, so no library starts tracing behind its back."""
    if settings.otel_exporter == "none" or enabled():
        return
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = settings.otel_endpoint
    if endpoint and not endpoint.rstrip("/").endswith("/v1/traces"):
        endpoint = endpoint.rstrip("/") + "/v1/traces"  # the base URL of the collector's OTLP/HTTP receiver
    start(settings, service_name(settings, services), BatchSpanProcessor(OTLPSpanExporter(endpoint)))
    log.info("tracing on", extra={"exporter": "otlp", "endpoint": endpoint or "from OTEL_EXPORTER_OTLP_*"})


def start(settings: Settings, name: str, processor: SpanProcessor) -> TracerProvider:
    """Makes spans from now on, handed to `processor` (the OTLP batch exporter, or a test's in-memory
    exporter). Sampling is parent-based with `settings.otel_sample_ratio` for new traces."""
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.sampling import ParentBased

    resource = Resource.create(
        {"service.name": name, "service.namespace": "pena", "deployment.environment.name": settings.environment}
    )
    provider = TracerProvider(resource=resource, sampler=ParentBased(_root_sampler(settings.otel_sample_ratio)))
    provider.add_span_processor(processor)
    _state.provider, _state.tracer = provider, provider.get_tracer(TRACER_NAME)
    return provider


def _root_sampler(ratio: float) -> Sampler:
    """How new traces start: with probability `ratio`, and never at a lone database statement (the
    relay's, the scheduler's and the gauges' polling run outside any request or event: no trace each)."""
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult, TraceIdRatioBased

    class NoLoneStatements(Sampler):
        def __init__(self) -> None:
            self.ratio = TraceIdRatioBased(ratio)

        def should_sample(
            self,
            parent_context: otel_context.Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Any = None,
            links: Any = None,
            trace_state: Any = None,
        ) -> SamplingResult:
            if kind is SpanKind.CLIENT:
                return SamplingResult(Decision.DROP)
            return self.ratio.should_sample(parent_context, trace_id, name, kind, attributes, links, trace_state)

        def get_description(self) -> str:
            return f"NoLoneStatements{{{self.ratio.get_description()}}}"

    return NoLoneStatements()


def stop() -> None:
    """Stops making spans (flushes the processor, removes the database instrumentation)."""
    provider = _state.provider
    if provider is None:
        return
    if _state.engines:
        from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

        SQLAlchemyInstrumentor().uninstrument()
    _state.provider, _state.tracer, _state.engines = None, trace.NoOpTracer(), []
    provider.shutdown()


def instrument_engines(engines: Sequence[AsyncEngine]) -> None:
    """Spans for the statements of these engines (with the ones instrumented before: the SQLAlchemy
    instrumentor is instrumented once per process, so it is re-applied to all of them)."""
    if not enabled() or not engines:
        return
    from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor

    instrumentor = SQLAlchemyInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
    _state.engines = [*_state.engines, *engines]
    # skip_dep_check: the instrumentation declares "sqlalchemy < 2.1" while its engine event hooks work
    # on 2.1 unchanged (tests/e2e/test_trace_across_services.py sees the statements' spans)
    instrumentor.instrument(
        engines=[e.sync_engine for e in _state.engines], tracer_provider=_state.provider, skip_dep_check=True
    )


def instrument_app(app: FastAPI) -> bool:
    """Server spans for the app's requests (not the probes'); False (and nothing added) when tracing is off."""
    if not enabled():
        return False
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    FastAPIInstrumentor.instrument_app(
        app, tracer_provider=_state.provider, excluded_urls=UNTRACED_URLS, exclude_spans=["receive", "send"]
    )
    return True


def parent(traceparent: str | None) -> otel_context.Context:
    """The context a W3C traceparent names (an empty one, starting a new trace, when there is none)."""
    return _W3C.extract({"traceparent": traceparent}) if traceparent else otel_context.Context()


@contextmanager
def continued(traceparent: str | None) -> Iterator[None]:
    """Tracing off: what the block writes (events) and logs carries this W3C traceparent, passed on as
    it is (a context variable, no OpenTelemetry context or span: a few hundred nanoseconds)."""
    token = passed_traceparent_var.set(valid_traceparent(traceparent))
    try:
        yield
    finally:
        passed_traceparent_var.reset(token)


@contextmanager
def consuming(event: CloudEvent, consumer: str | None) -> Iterator[None]:
    """The handling of one event: a CONSUMER span, child of the event's traceparent (the relay's send
    span), current while the handler runs. Tracing off: the event's trace context, no span."""
    if not enabled():
        with continued(event.traceparent):
            yield
        return
    if _processing.get() == event.id:
        yield
        return
    attributes: dict[str, Any] = {
        "messaging.system": "kafka",
        "messaging.operation.type": "process",
        "messaging.operation.name": "process",
        "messaging.message.id": event.id,
        "cloudevents.event_id": event.id,
        "cloudevents.event_type": event.type,
        "cloudevents.event_source": event.source,
    }
    if consumer:
        attributes["messaging.consumer.group.name"] = consumer
    token = _processing.set(event.id)
    try:
        with _state.tracer.start_as_current_span(
            f"process {event.type}", context=parent(event.traceparent), kind=SpanKind.CONSUMER, attributes=attributes
        ):
            yield
    finally:
        _processing.reset(token)


@contextmanager
def sending(destination: str, envelopes: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]] | None]:
    """The relay's publication of a batch: one PRODUCER span per event, child of the traceparent the
    event was stored with, ended when the block ends (after the broker acknowledged the batch; with
    the error when it raised). Yields the envelopes to send, each with its send span's traceparent,
    or None when tracing is off (send the stored envelopes as they are)."""
    if not enabled():
        yield None
        return
    spans: list[trace.Span] = []
    sent: list[dict[str, Any]] = []
    for envelope in envelopes:
        span = _state.tracer.start_span(
            f"send {destination}",
            context=parent(envelope.get("traceparent")),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.operation.name": "send",
                "messaging.destination.name": destination,
                "messaging.message.id": str(envelope.get("id")),
                "messaging.batch.message_count": len(envelopes),
                "cloudevents.event_type": str(envelope.get("type")),
            },
        )
        spans.append(span)
        sent.append({**envelope, "traceparent": format_traceparent(span.get_span_context())})
    try:
        yield sent
    except BaseException as exc:
        for span in spans:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
        raise
    finally:
        for span in spans:
            span.end()
