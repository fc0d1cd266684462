"""Across services on the real Kafka broker: a participant.registered event published by the
(stand-in) registry through its outbox reaches the training service and makes the participant
enrollable; the enrolment announcement leaves through training's own outbox and topic."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pena.kafka import ensure_topics
from services.training.app import definition as training
from services.training.models import EligibleParticipant
from tests.support import eventually, participants_publisher, register
from tests.training.support import create_centre, open_batch

pytestmark = pytest.mark.kafka


async def test_registered_over_kafka_makes_the_participant_enrollable(make_runtime, settings, api, auth) -> None:
    await ensure_topics(settings, ["participants", "training"])
    runtime = await make_runtime([participants_publisher, training], bus="kafka", workers=True)
    admin = auth("admin")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        url = f"/v1/batches/{batch['id']}/enrolments"
        before = await client.post(url, json={"participant_id": "p-kafka", "exit_agreement": True}, headers=admin)
        assert before.status_code == 422
        assert before.json()["type"].endswith("/participant_unknown")

        await register(runtime, "p-kafka", drain=False)  # the relay worker publishes it to Kafka

        async def known() -> bool:
            async with runtime.service("training").db.transaction() as session:
                row = (
                    (
                        await session.execute(
                            select(EligibleParticipant).where(EligibleParticipant.participant_id == "p-kafka")  # type: ignore[arg-type]
                        )
                    )
                    .scalars()
                    .first()
                )
                return row is not None and row.status == "active"

        await eventually(known, what="participant.registered consumed by training")
        after = await client.post(url, json={"participant_id": "p-kafka", "exit_agreement": True}, headers=admin)
    assert after.status_code == 201, after.text
    assert after.json()["participant_id"] == "p-kafka"
