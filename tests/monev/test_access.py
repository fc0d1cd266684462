"""Who sees and does what: automatic assignment by region, admin assignment, a facilitator sees and
submits only their own tasks, lists with filters and cursor pagination."""

from __future__ import annotations

from datetime import UTC, datetime

from pena.clock import ManualClock
from tests.monev.support import WIB, announce_completions, completion, monev, register, scheduler, survey_body, tasks
from tests.support import audit_actions, participants_publisher, training_publisher


async def _setup(make_runtime, api, auth):
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    admin = auth("admin")
    async with api(runtime) as setup_client:
        for subject, prefix in (("fac-province", "13"), ("fac-village", "1371011001"), ("fac-bandung", "3273")):
            response = await setup_client.post(
                "/v1/monev/facilitators", json={"subject": subject, "region_prefix": prefix}, headers=admin
            )
            assert response.status_code == 201, response.text
    # the participant's registry village decides, not the batch location
    await register(runtime, "p-padang", region_code="1371011001")
    await register(runtime, "p-solok", region_code="1372021002")
    await register(runtime, "p-bogor", region_code="3201011001")
    completed_at = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)
    await announce_completions(
        runtime,
        completion("p-padang", completed_at, region_code="3273011001"),
        completion("p-solok", completed_at),
        completion("p-bogor", completed_at),
    )
    clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
    await scheduler(runtime).drain()
    return runtime, api(runtime), admin


async def test_tasks_are_assigned_by_the_longest_covering_region_prefix(make_runtime, api, auth) -> None:
    runtime, client, admin = await _setup(make_runtime, api, auth)
    async with client:
        assignees = {t.participant_id: (t.assignee, t.region_code) for t in await tasks(runtime)}
        assert assignees == {
            "p-padang": ("fac-village", "1371011001"),
            "p-solok": ("fac-province", "1372021002"),
            "p-bogor": (None, "3201011001"),  # nobody covers Bogor
        }
        coverage = await client.get("/v1/monev/facilitators", params={"limit": 2}, headers=admin)
        assert [r["region_prefix"] for r in coverage.json()["items"]] == ["13", "1371011001"]
        rest = await client.get(
            "/v1/monev/facilitators", params={"cursor": coverage.json()["next_cursor"]}, headers=admin
        )
        assert [r["region_prefix"] for r in rest.json()["items"]] == ["3273"]
        again = await client.post(
            "/v1/monev/facilitators", json={"subject": "fac-bandung", "region_prefix": "3273"}, headers=admin
        )
        assert again.status_code == 201
        assert again.json()["id"] == rest.json()["items"][0]["id"]

        # coverage removed: the next Padang village task goes to the province facilitator
        village_row = coverage.json()["items"][1]
        removed = await client.delete(f"/v1/monev/facilitators/{village_row['id']}", headers=admin)
        assert removed.status_code == 204
        assert (await client.delete(f"/v1/monev/facilitators/{village_row['id']}", headers=admin)).status_code == 404
        await announce_completions(
            runtime, completion("p-padang", datetime(2026, 1, 2, 10, 0, tzinfo=WIB), batch_id="batch-2")
        )
        second = [t for t in await tasks(runtime) if t.batch_id == "batch-2"][0]
        assert second.assignee == "fac-province"
        assert "monev.facilitator_region.removed" in await audit_actions(runtime, "monev")


async def test_a_facilitator_sees_and_submits_only_their_own_tasks(make_runtime, api, auth) -> None:
    runtime, client, admin = await _setup(make_runtime, api, auth)
    by_participant = {t.participant_id: t for t in await tasks(runtime)}
    village = auth("facilitator", sub="fac-village")
    async with client:
        own = await client.get("/v1/monev/tasks", headers=village)
        assert own.status_code == 200
        assert [t["participant_id"] for t in own.json()["items"]] == ["p-padang"]
        # asking for someone else's tasks does not widen the view
        other = await client.get("/v1/monev/tasks", params={"assignee": "fac-province"}, headers=village)
        assert other.json()["items"] == []

        solok = by_participant["p-solok"].id
        assert (await client.get(f"/v1/monev/tasks/{solok}", headers=village)).status_code == 404
        refused = await client.post(f"/v1/monev/tasks/{solok}/survey", json=survey_body(), headers=village)
        assert refused.status_code == 404
        mine = await client.get(f"/v1/monev/tasks/{by_participant['p-padang'].id}", headers=village)
        assert mine.status_code == 200
        assert mine.json()["result"] is None
        assert "monev.task.read" in await audit_actions(runtime, "monev")

        # facilitators neither assign nor read the programme summary
        assign = await client.post(
            f"/v1/monev/tasks/{solok}/assignment", json={"facilitator": "fac-village"}, headers=village
        )
        assert assign.status_code == 403
        assert (await client.get("/v1/monev/summary", headers=village)).status_code == 403

        # an admin hands the Bogor task to fac-village, who now sees and can submit it
        bogor = by_participant["p-bogor"].id
        handed = await client.post(
            f"/v1/monev/tasks/{bogor}/assignment", json={"facilitator": "fac-village"}, headers=admin
        )
        assert handed.status_code == 200
        assert handed.json()["assignee"] == "fac-village"
        own = await client.get("/v1/monev/tasks", headers=village)
        assert sorted(t["participant_id"] for t in own.json()["items"]) == ["p-bogor", "p-padang"]
        submitted = await client.post(f"/v1/monev/tasks/{bogor}/survey", json=survey_body(), headers=village)
        assert submitted.status_code == 201, submitted.text
        assert "monev.task.assigned" in await audit_actions(runtime, "monev")


async def test_admins_and_verifiers_list_everything_with_filters_and_cursors(make_runtime, api, auth) -> None:
    runtime, client, admin = await _setup(make_runtime, api, auth)
    verifier = auth("verifier", unit="national")
    async with client:
        first = await client.get("/v1/monev/tasks", params={"limit": 2}, headers=verifier)
        assert first.status_code == 200
        assert len(first.json()["items"]) == 2
        second = await client.get(
            "/v1/monev/tasks", params={"limit": 2, "cursor": first.json()["next_cursor"]}, headers=verifier
        )
        assert len(second.json()["items"]) == 1
        assert second.json()["next_cursor"] is None
        seen = {t["participant_id"] for t in first.json()["items"] + second.json()["items"]}
        assert seen == {"p-padang", "p-solok", "p-bogor"}

        sumatra = await client.get("/v1/monev/tasks", params={"region_prefix": "13"}, headers=admin)
        assert sorted(t["participant_id"] for t in sumatra.json()["items"]) == ["p-padang", "p-solok"]
        due = await client.get("/v1/monev/tasks", params={"status": "due", "participant_id": "p-bogor"}, headers=admin)
        assert [t["participant_id"] for t in due.json()["items"]] == ["p-bogor"]
        none_yet = await client.get("/v1/monev/tasks", params={"status": "done"}, headers=admin)
        assert none_yet.json()["items"] == []
        window = await client.get(
            "/v1/monev/tasks",
            params={"due_after": "2026-03-01T00:00:00+07:00", "due_before": "2026-04-01T00:00:00+07:00"},
            headers=admin,
        )
        assert window.json()["items"] == []  # all came due on 28 February
        bad = await client.get("/v1/monev/tasks", params={"status": "lost"}, headers=admin)
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "status"
        scoped = await client.get("/v1/monev/tasks", headers=auth("verifier", unit="32"))
        assert [t["participant_id"] for t in scoped.json()["items"]] == ["p-bogor"]
