"""With the real training service in the same process (in-process bus): a backdated 2022 batch closes,
its training.completed reaches monev, the task is due at once, the facilitator covering the village
gets it and submits the survey."""

from __future__ import annotations

from datetime import UTC, date, datetime

from pena.clock import ManualClock
from services.training.app import definition as training
from tests.monev.support import WIB, monev, register, scheduler, survey_body, tasks
from tests.support import outbox_events, participants_publisher
from tests.training.support import create_centre, open_batch, set_status


async def test_a_2022_batch_closed_in_training_becomes_a_due_monev_task(make_runtime, api, auth) -> None:
    clock = ManualClock(datetime(2026, 1, 5, 3, 0, tzinfo=UTC))
    runtime = await make_runtime([participants_publisher, training, monev], clock=clock)
    admin = auth("admin")
    await register(runtime, "p-hist", income=600_000, household_size=3)
    async with api(runtime) as client:
        covered = await client.post(
            "/v1/monev/facilitators", json={"subject": "fac-padang", "region_prefix": "1371"}, headers=admin
        )
        assert covered.status_code == 201
        batch = await open_batch(client, admin, await create_centre(client, admin), start=date(2022, 8, 6), sessions=3)
        enrolled = await client.post(
            f"/v1/batches/{batch['id']}/enrolments",
            json={"participant_id": "p-hist", "exit_agreement": True},
            headers=admin,
        )
        assert enrolled.status_code == 201, enrolled.text
        assert (await set_status(client, admin, batch["id"], "running")).status_code == 200
        for sess in batch["sessions"]:
            attended = await client.post(
                f"/v1/batches/{batch['id']}/attendance",
                json={"session_id": sess["id"], "present": ["p-hist"]},
                headers=admin,
            )
            assert attended.status_code == 200, attended.text
        closed = await client.post(
            f"/v1/batches/{batch['id']}/close", json={"completed_at": "2022-08-20T10:00:00+07:00"}, headers=admin
        )
        assert closed.status_code == 200, closed.text
        await runtime.service("training").relay.drain()

        [task] = await tasks(runtime)
        assert task.due_at.astimezone(WIB) == datetime(2022, 11, 20, 10, 0, tzinfo=WIB)
        assert (task.batch_id, task.assignee, task.business_field) == (batch["id"], "fac-padang", "fashion_menjahit")
        assert await scheduler(runtime).drain() == 1

        facilitator = auth("facilitator", sub="fac-padang")
        listed = await client.get("/v1/monev/tasks", params={"status": "due"}, headers=facilitator)
        assert [t["id"] for t in listed.json()["items"]] == [task.id]
        url = f"/v1/monev/tasks/{task.id}/survey"
        early = await client.post(url, json=survey_body(visit=date(2022, 8, 19)), headers=facilitator)
        assert early.status_code == 422
        assert early.json()["errors"][0]["rule"] == "visit_before_training"
        done = await client.post(url, json=survey_body(visit=date(2026, 1, 4)), headers=facilitator)
        assert done.status_code == 201, done.text

    [completed] = await outbox_events(runtime, "monev", "monev.completed")
    assert completed["data"]["batch_id"] == batch["id"]
    assert completed["data"]["measures"]["income_change"] == 2_000_000 - 600_000
    assert completed["data"]["measures"]["baseline_household_size"] == 3
