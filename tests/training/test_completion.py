"""Attendance and closing on a real PostgreSQL: one training.completed per qualifying participant,
training.dropped for those under the rule, nothing new on a second close, backdated history."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx

from tests.support import audit_rows, outbox_events, register
from tests.training.support import create_centre, open_batch, set_status


async def _attend(
    client: httpx.AsyncClient, headers: dict[str, str], batch: dict[str, Any], plan: dict[str, int]
) -> None:
    """plan: participant -> how many of the batch's sessions (from the first) they attended."""
    for index, sess in enumerate(batch["sessions"]):
        present = [p for p, attended in plan.items() if index < attended]
        response = await client.post(
            f"/v1/batches/{batch['id']}/attendance",
            json={"session_id": sess["id"], "present": present},
            headers=headers,
        )
        assert response.status_code == 200, response.text


async def _enrol_all(client: httpx.AsyncClient, headers: dict[str, str], batch_id: str, people: list[str]) -> None:
    for p in people:
        response = await client.post(
            f"/v1/batches/{batch_id}/enrolments", json={"participant_id": p, "exit_agreement": True}, headers=headers
        )
        assert response.status_code == 201, response.text


async def test_close_emits_one_completed_per_qualifying_participant_and_nothing_the_second_time(
    runtime, api, auth
) -> None:
    admin = auth("admin")
    plan = {"p-full": 5, "p-exact": 4, "p-low": 2, "p-none": 0}  # of 5 sessions; rule 0.8
    await register(runtime, *plan)
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin), sessions=5)
        await _enrol_all(client, admin, batch["id"], list(plan))
        assert (await set_status(client, admin, batch["id"], "running")).status_code == 200
        await _attend(client, admin, batch, plan)

        first = await client.post(f"/v1/batches/{batch['id']}/close", headers=admin)
        assert first.status_code == 200, first.text
        after_first = {
            name: len(await outbox_events(runtime, "training", name))
            for name in ("training.completed", "training.dropped")
        }
        second = await client.post(f"/v1/batches/{batch['id']}/close", headers=admin)
        roster = await client.get(f"/v1/batches/{batch['id']}/roster", headers=admin)

    outcomes = {o["participant_id"]: o["outcome"] for o in first.json()["outcomes"]}
    assert outcomes == {"p-full": "completed", "p-exact": "completed", "p-low": "dropped", "p-none": "dropped"}
    assert first.json()["status"] == "completed"

    completed = await outbox_events(runtime, "training", "training.completed")
    assert sorted(e["subject"] for e in completed) == ["p-exact", "p-full"]
    by_subject = {e["subject"]: e["data"] for e in completed}
    assert by_subject["p-exact"]["attendance_rate"] == 0.8
    assert by_subject["p-exact"]["sessions_attended"] == 4
    assert by_subject["p-exact"]["sessions_total"] == 5
    assert by_subject["p-full"]["completed_at"].startswith("2026-01-05")  # the injected clock

    dropped = await outbox_events(runtime, "training", "training.dropped")
    assert sorted((e["subject"], e["data"]["reason_code"]) for e in dropped) == [
        ("p-low", "attendance_below_rule"),
        ("p-none", "attendance_below_rule"),
    ]

    # the second close answers with the same result and emits nothing new
    assert second.status_code == 200
    assert second.json() == first.json()
    assert after_first == {"training.completed": 2, "training.dropped": 2}
    assert len(await outbox_events(runtime, "training", "training.completed")) == 2
    assert len(await outbox_events(runtime, "training", "training.dropped")) == 2

    rates = {item["participant_id"]: (item["status"], item["attendance_rate"]) for item in roster.json()["items"]}
    assert rates["p-low"] == ("dropped", 0.4)
    assert rates["p-full"] == ("completed", 1.0)
    assert len(await audit_rows(runtime, "training", "training.roster.read")) == 1


async def test_backdated_close_of_a_2022_batch_carries_completed_at_in_2022(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-hist")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin), start=date(2022, 8, 6), sessions=3)
        await _enrol_all(client, admin, batch["id"], ["p-hist"])
        await set_status(client, admin, batch["id"], "running")
        await _attend(client, admin, batch, {"p-hist": 3})
        too_early = await client.post(
            f"/v1/batches/{batch['id']}/close", json={"completed_at": "2022-08-01T10:00:00+07:00"}, headers=admin
        )
        closed = await client.post(
            f"/v1/batches/{batch['id']}/close", json={"completed_at": "2022-08-20T10:00:00+07:00"}, headers=admin
        )
    assert too_early.status_code == 422
    assert too_early.json()["errors"][0]["field"] == "completed_at"
    assert closed.status_code == 200, closed.text
    assert closed.json()["completed_at"].startswith("2022-08-20")
    [event] = await outbox_events(runtime, "training", "training.completed")
    assert event["data"]["completed_at"].startswith("2022-08-20")
    assert event["subject"] == "p-hist"
    [audit] = await audit_rows(runtime, "training", "training.batch.closed")
    assert audit.details["backdated"] is True


async def test_reposting_a_session_is_an_audited_correction(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-1", "p-2")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin), sessions=2)
        await _enrol_all(client, admin, batch["id"], ["p-1", "p-2"])
        await set_status(client, admin, batch["id"], "running")
        day = batch["sessions"][0]["date"]
        url = f"/v1/batches/{batch['id']}/attendance"
        first = await client.post(url, json={"session_date": day, "present": ["p-1"]}, headers=admin)
        fixed = await client.post(url, json={"session_date": day, "present": ["p-1", "p-2"]}, headers=admin)
        stranger = await client.post(url, json={"session_date": day, "present": ["p-x"]}, headers=admin)
        roster = await client.get(f"/v1/batches/{batch['id']}/roster", headers=admin)
    assert first.json()["corrected"] is False
    assert first.json()["present"] == 1
    assert fixed.json()["corrected"] is True
    assert fixed.json()["present"] == 2
    [correction] = await audit_rows(runtime, "training", "training.attendance.corrected")
    assert (correction.details["old_present"], correction.details["new_present"]) == (1, 2)
    assert stranger.status_code == 422
    assert stranger.json()["errors"][0] == {
        "field": "present",
        "rule": "enrolled_participant",
        "message": "1 id(s) are not enrolled in this batch",
    }
    assert {i["participant_id"]: i["sessions_attended"] for i in roster.json()["items"]} == {"p-1": 1, "p-2": 1}


async def test_cancelling_a_batch_drops_its_enrolled_participants(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-1")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        await _enrol_all(client, admin, batch["id"], ["p-1"])
        cancelled = await set_status(client, admin, batch["id"], "cancelled")
        reopened = await set_status(client, admin, batch["id"], "open")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == "cancelled"
    assert reopened.status_code == 409
    assert reopened.json()["type"].endswith("/invalid_transition")
    [event] = await outbox_events(runtime, "training", "training.dropped")
    assert event["data"]["reason_code"] == "batch_cancelled"
