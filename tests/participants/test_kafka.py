from __future__ import annotations

import json

import pytest

from pena.kafka import ensure_topics
from services.participants.app import definition as participants
from tests.participants.support import KK, WOMAN_NIK, woman
from tests.support import read_topic

pytestmark = pytest.mark.kafka


async def test_registration_reaches_kafka_without_identity_data(make_runtime, api, auth, settings) -> None:
    await ensure_topics(settings, ["participants"])
    runtime = await make_runtime([participants], bus="kafka", workers=True)
    async with api(runtime) as client:
        created = await client.post("/v1/participants", json=woman(), headers=auth("admin"))
        assert created.status_code == 201, created.text
    [message] = await read_topic(settings.kafka_bootstrap, settings.topic("participants"), expect=1)
    assert message["key"].decode() == created.json()["id"]
    event = message["value"]
    assert event["type"] == "id.go.kemensos.pena.participant.registered.v1"
    assert event["subject"] == created.json()["id"]
    assert event["data"]["status"] == "candidate"
    assert event["data"]["version"] == 1
    raw = json.dumps(message, default=str)
    for secret in (WOMAN_NIK, KK, "Siti Rahmawati", "1990-05-12"):
        assert secret not in raw
