"""`pena serve <service> --role api|workers`: the HTTP API and the background loops in separate
processes (here two runtimes on the same databases and topics). The API process writes the event into
the outbox and publishes nothing itself; the workers process's relay publishes it; the workers process
serves the operations routes only."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from pena.http.app import create_app
from pena.kafka import ensure_topics
from pena.outbox import pending_count
from services.participants.app import definition as participants
from tests.participants.support import woman
from tests.support import outbox_events, read_topic

pytestmark = pytest.mark.kafka


async def test_api_process_writes_the_event_and_the_workers_process_publishes_it(
    make_runtime, api, auth, settings
) -> None:
    await ensure_topics(settings, ["participants"])
    api_runtime = await make_runtime([participants], bus="kafka", workers=False)
    assert api_runtime.services["participants"].relay is not None  # built, never started: no task runs it
    assert api_runtime._tasks == []
    async with api(api_runtime) as client:
        created = await client.post("/v1/participants", json=woman(), headers=auth("admin"))
        assert created.status_code == 201, created.text
    await asyncio.sleep(1.0)  # longer than the relay's idle poll (0.5 s here): no relay in this process
    [row] = await outbox_events(api_runtime, "participants", "participant.registered")
    assert row["subject"] == created.json()["id"]
    async with api_runtime.services["participants"].db.transaction() as session:
        assert await pending_count(session) == 1

    workers_runtime = await make_runtime([participants], bus="kafka", workers=True)
    [message] = await read_topic(settings.kafka_bootstrap, settings.topic("participants"), expect=1)
    assert message["key"].decode() == created.json()["id"]
    assert message["value"]["id"] == row["id"]

    workers_app = create_app(workers_runtime, api=False)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=workers_app, raise_app_exceptions=False), base_url="http://pena.test"
    ) as workers:
        assert (await workers.get("/healthz")).status_code == 200
        assert (await workers.get("/readyz")).status_code == 200
        refused = await workers.post("/v1/participants", json=woman(), headers=auth("admin"))
        assert refused.status_code == 404
        paths = set(workers_app.openapi()["paths"])
        assert not any(path.startswith("/v1/participants") for path in paths)
        assert "/readyz" in paths
