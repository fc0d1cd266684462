"""One trace across services on the real PostgreSQL and Kafka, with tracing on (pena.telemetry): closing
a batch in training (the HTTP server span) writes training.completed to training's outbox; training's
relay sends it in a span continuing that trace; monev's consumer handles it in a child span of the
record's traceparent, where the task is stored (its INSERT is a span of that trace) and monev.scheduled
is written carrying the same trace."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import ManualClock
from pena.contracts import BY_NAME
from pena.kafka import ensure_topics
from services.monev import queries as monev_queries
from services.training.app import definition as training
from services.training.models import EligibleParticipant
from tests.monev.support import in_monev, monev, register, tasks
from tests.support import eventually, in_service, outbox_events, participants_publisher
from tests.training.support import create_centre, open_batch, set_status

pytestmark = pytest.mark.kafka


def _chain(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    """The span and its ancestors among the finished spans, nearest first."""
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


def _statement(span: ReadableSpan) -> str:
    attributes = span.attributes or {}
    return str(attributes.get("db.statement") or attributes.get("db.query.text") or "")


async def test_closing_a_batch_is_one_trace_through_kafka_to_the_monev_task(
    spans: InMemorySpanExporter, make_runtime, settings, api, auth
) -> None:
    await ensure_topics(settings, ["participants", "training", "monev"])
    clock = ManualClock(datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    runtime = await make_runtime([participants_publisher, training, monev], bus="kafka", workers=True, clock=clock)
    admin = auth("admin")
    await register(runtime, "p-trace", income=600_000, household_size=3, drain=False)

    async def eligible(session: AsyncSession) -> bool:
        query = select(EligibleParticipant).where(EligibleParticipant.participant_id == "p-trace")  # type: ignore[arg-type]
        return (await session.execute(query)).first() is not None

    async def known_to_training_and_monev() -> bool:
        baseline = await in_monev(runtime, lambda s: monev_queries.baseline(s, "p-trace"))
        return await in_service(runtime, "training", eligible) and baseline is not None

    await eventually(known_to_training_and_monev, what="participant.registered consumed by training and monev")

    async with api(runtime) as client:
        covered = await client.post(
            "/v1/monev/facilitators", json={"subject": "fac-padang", "region_prefix": "1371"}, headers=admin
        )
        assert covered.status_code == 201, covered.text
        batch = await open_batch(client, admin, await create_centre(client, admin), start=date(2022, 8, 6), sessions=3)
        enrolled = await client.post(
            f"/v1/batches/{batch['id']}/enrolments",
            json={"participant_id": "p-trace", "exit_agreement": True},
            headers=admin,
        )
        assert enrolled.status_code == 201, enrolled.text
        assert (await set_status(client, admin, batch["id"], "running")).status_code == 200
        for sess in batch["sessions"]:
            attended = await client.post(
                f"/v1/batches/{batch['id']}/attendance",
                json={"session_id": sess["id"], "present": ["p-trace"]},
                headers=admin,
            )
            assert attended.status_code == 200, attended.text
        closed = await client.post(
            f"/v1/batches/{batch['id']}/close", json={"completed_at": "2022-08-20T10:00:00+07:00"}, headers=admin
        )
        assert closed.status_code == 200, closed.text

    [task] = await eventually(lambda: tasks(runtime), what="the monev task from the closed batch")
    assert (task.batch_id, task.participant_id) == (batch["id"], "p-trace")
    completed_type = BY_NAME["training.completed"].type

    async def process_span() -> ReadableSpan | None:
        return next(
            (
                s
                for s in spans.get_finished_spans()
                if s.kind is SpanKind.CONSUMER
                and s.name == f"process {completed_type}"
                and (s.attributes or {}).get("messaging.consumer.group.name") == "monev"
            ),
            None,
        )

    process = await eventually(process_span, what="monev's process span ended")
    assert process is not None
    finished = spans.get_finished_spans()
    # the workers' polling (relay, scheduler, gauges) makes no trace of its own: every statement has a parent
    assert all(s.parent is not None for s in finished if s.kind is SpanKind.CLIENT)
    by_id = {s.context.span_id: s for s in finished}

    [http] = [s for s in finished if s.kind is SpanKind.SERVER and s.name == "POST /v1/batches/{batch_id}/close"]
    trace_id = http.context.trace_id
    chain = _chain(process, by_id)
    assert [s.kind for s in chain] == [SpanKind.CONSUMER, SpanKind.PRODUCER, SpanKind.SERVER]
    assert chain[-1] is http  # consumer span -> training relay's send span -> the request
    send = chain[1]
    assert send.name == f"send {settings.topic('training')}"
    assert (send.attributes or {})["cloudevents.event_type"] == completed_type
    assert {s.context.trace_id for s in chain} == {trace_id}

    # the handler's statements are spans of the same trace under the consumer span, the task's INSERT among them
    inserts = [s for s in finished if "INSERT INTO monev_tasks" in _statement(s) and process in _chain(s, by_id)[1:]]
    assert inserts, "the monev task was stored inside the consumer span"
    assert all(s.context.trace_id == trace_id for s in inserts)

    # the events the handler wrote carry the trace on (the consumer span is their parent)
    [scheduled] = await outbox_events(runtime, "monev", "monev.scheduled")
    _, scheduled_trace, scheduled_parent, _ = scheduled["traceparent"].split("-")
    assert int(scheduled_trace, 16) == trace_id
    assert int(scheduled_parent, 16) == process.context.span_id

    # and training's stored event names the request's span (the relay's send span is its child)
    [stored] = await outbox_events(runtime, "training", "training.completed")
    assert int(stored["traceparent"].split("-")[2], 16) == http.context.span_id
