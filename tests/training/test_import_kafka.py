"""A 2023 cohort loaded by files with the service's own workers (scheduler and relay) on the real Kafka
broker: the backfill's announcements leave on training's topic, the completions with their 2023
date, which is what Monev plans its visits from."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import col

from pena.kafka import ensure_topics
from services.training.app import definition as training
from services.training.models import EligibleParticipant
from tests.support import eventually, participants_publisher, read_topic, register
from tests.training.backfill_support import (
    ATTENDANCE_CSV,
    BATCHES_CSV,
    CENTRE,
    COMPLETIONS_CSV,
    ENROLMENTS_CSV,
    SESSIONS_CSV,
)
from tests.training.support import create_centre

pytestmark = pytest.mark.kafka


async def test_a_cohort_loaded_by_files_is_announced_on_kafka(make_runtime, settings, api, auth) -> None:
    await ensure_topics(settings, ["participants", "training"])
    runtime = await make_runtime([participants_publisher, training], bus="kafka", workers=True)
    await register(runtime, "p-1", "p-2", "p-3", drain=False)
    admin = auth("admin")
    async with api(runtime) as client:
        await create_centre(client, admin, CENTRE)

        async def heard_of_everyone() -> bool:
            probe = await client.get("/v1/batches/reference-data", headers=admin)  # the service is up
            return probe.status_code == 200 and len(await _known(runtime)) == 3

        await eventually(heard_of_everyone, what="the three registrations consumed from Kafka")
        for kind, text in (
            ("batches", BATCHES_CSV),
            ("sessions", SESSIONS_CSV),
            ("enrolments", ENROLMENTS_CSV),
            ("attendance", ATTENDANCE_CSV),
            ("completions", COMPLETIONS_CSV),
        ):
            started = await client.post(
                f"/v1/batches/imports/{kind}", files={"file": (f"{kind}.csv", text.encode(), "text/csv")}, headers=admin
            )
            assert started.status_code == 202, started.text

            async def finished(location: str = started.headers["location"]) -> dict | None:
                run = (await client.get(location, headers=admin)).json()
                return run if run["status"] == "done" else None

            run = await eventually(finished, what=f"the {kind} import run by the service's scheduler")
            assert run is not None
            assert run["error_rows"] == 0, run
    records = await read_topic(settings.kafka_bootstrap, settings.topic("training"), expect=7)
    types = sorted(r["value"]["type"].rsplit(".", 2)[-2] for r in records)
    assert types == ["batch_scheduled", "completed", "completed", "dropped", "enrolled", "enrolled", "enrolled"]
    completed = [r["value"] for r in records if r["value"]["type"].endswith(".completed.v1")]
    assert {c["data"]["completed_at"] for c in completed} == {"2023-04-14T10:00:00+07:00"}
    assert sorted(c["subject"] for c in completed) == ["p-1", "p-2"]


async def _known(runtime) -> list[str]:
    async with runtime.service("training").db.transaction() as session:
        return list((await session.execute(select(col(EligibleParticipant.participant_id)))).scalars().all())
