"""Who sees and does what: automatic assignment by region, admin assignment, a facilitator sees and
submits only their own tasks, lists with filters and cursor pagination."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Policy, route_policies, undeclared_routes
from pena.clock import ManualClock
from pena.http.app import create_app
from pena.idempotency import unseal
from pena.runtime import Runtime
from pena.tables import audit_log, idempotency_keys
from tests.monev.support import (
    WIB,
    announce_completions,
    completion,
    in_monev,
    monev,
    register,
    scheduler,
    survey_body,
    tasks,
)
from tests.support import ABSENT, audit_actions, bearer, participants_publisher, training_publisher


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


# ------------------------------------------------------------------ issue 13: one access policy (pena.access)

NOTES = "visited at the stall; neighbour Ibu Sari helps"


@dataclass
class ReachWorld:
    runtime: Runtime
    padang: str  # 1371011001, assigned to fac-1, surveyed (with notes)
    bogor: str  # 3201011001, assigned to fac-2


async def _reach_world(make_runtime: Any, api: Any, auth: Any) -> ReachWorld:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    admin = auth("admin")
    async with api(runtime) as client:
        for subject, prefix in (("fac-1", "1371"), ("fac-2", "32")):
            covered = await client.post(
                "/v1/monev/facilitators", json={"subject": subject, "region_prefix": prefix}, headers=admin
            )
            assert covered.status_code == 201, covered.text
    await register(runtime, "p-padang", region_code="1371011001")
    await register(runtime, "p-bogor", region_code="3201011001")
    completed_at = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)
    await announce_completions(
        runtime, completion("p-padang", completed_at), completion("p-bogor", completed_at, region_code="3201011001")
    )
    clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
    await scheduler(runtime).drain()
    ids = {t.participant_id: t for t in await tasks(runtime)}
    assert (ids["p-padang"].assignee, ids["p-bogor"].assignee) == ("fac-1", "fac-2")
    async with api(runtime) as client:
        submitted = await client.post(
            f"/v1/monev/tasks/{ids['p-padang'].id}/survey",
            json=survey_body(notes=NOTES),
            headers=auth("facilitator", sub="fac-1"),
        )
    assert submitted.status_code == 201, submitted.text
    return ReachWorld(runtime, ids["p-padang"].id, ids["p-bogor"].id)


@dataclass(frozen=True)
class Case:
    name: str
    role: str
    sub: str
    unit: object
    read: tuple[int, int]  # GET /tasks/{padang}, GET /tasks/{bogor}
    listed: int | set[str]  # GET /tasks: 403, or the participants listed
    history: int  # GET /tasks/{padang}/surveys
    notes: bool  # the history shows the notes (when 200)
    summary: int | set[str]  # GET /summary?group_by=province: status, or the provinces in it
    assign: int  # POST /tasks/{padang}/assignment (write)
    submit: int  # POST /tasks/{padang}/survey again without a correction reason (write): 409 = reached


NONE = (403, 403)
ALL = {"p-padang", "p-bogor"}
# role x reach x route kind. monev has no export route; the summary is its aggregate read.
CASES = [
    Case("admin", "admin", "adm", ABSENT, (200, 200), ALL, 200, True, {"13", "32"}, 200, 409),
    Case(
        "integrator, no unit: national by role",
        "integrator",
        "int",
        ABSENT,
        (200, 200),
        ALL,
        200,
        False,
        {"13", "32"},
        403,
        403,
    ),
    Case("integrator, malformed unit", "integrator", "int-x", "abc", NONE, 403, 403, False, 403, 403, 403),
    Case(
        "verifier, explicit national",
        "verifier",
        "ver-n",
        "national",
        (200, 200),
        ALL,
        200,
        False,
        {"13", "32"},
        403,
        403,
    ),
    Case("verifier, province 13", "verifier", "ver-13", "13", (200, 404), {"p-padang"}, 200, False, {"13"}, 403, 403),
    Case(
        "verifier, dotted regency",
        "verifier",
        "ver-1371",
        "13.71",
        (200, 404),
        {"p-padang"},
        200,
        False,
        {"13"},
        403,
        403,
    ),
    Case("verifier, province 32", "verifier", "ver-32", "32", (404, 200), {"p-bogor"}, 404, False, {"32"}, 403, 403),
    Case("verifier, no unit", "verifier", "ver-none", ABSENT, NONE, 403, 403, False, 403, 403, 403),
    Case("verifier, empty unit", "verifier", "ver-empty", "", NONE, 403, 403, False, 403, 403, 403),
    Case("verifier, blank unit", "verifier", "ver-blank", "  ", NONE, 403, 403, False, 403, 403, 403),
    Case("verifier, 3 digits", "verifier", "ver-137", "137", NONE, 403, 403, False, 403, 403, 403),
    Case("verifier, a number", "verifier", "ver-int", 13, NONE, 403, 403, False, 403, 403, 403),
    Case("approver, province 13", "approver", "apr-13", "13", (200, 404), {"p-padang"}, 200, False, {"13"}, 403, 403),
    Case("approver, no unit", "approver", "apr-none", ABSENT, NONE, 403, 403, False, 403, 403, 403),
    Case(
        "facilitator, own task (no unit)",
        "facilitator",
        "fac-1",
        ABSENT,
        (200, 404),
        {"p-padang"},
        200,
        True,
        403,
        403,
        409,
    ),
    Case("facilitator, other's task", "facilitator", "fac-2", "32", (404, 200), {"p-bogor"}, 404, False, 403, 403, 404),
    Case(
        "facilitator, nothing assigned, empty unit",
        "facilitator",
        "fac-3",
        "",
        (404, 404),
        set(),
        404,
        False,
        403,
        403,
        404,
    ),
    Case("centre operator", "centre_operator", "op-1", "centre-padang", NONE, 403, 403, False, 403, 403, 403),
]


async def test_role_and_reach_decide_every_route_kind(make_runtime, api, auth, settings) -> None:
    world = await _reach_world(make_runtime, api, auth)
    async with api(world.runtime) as client:
        for case in CASES:
            headers = bearer(settings, case.role, sub=case.sub, unit=case.unit)
            seen: dict[str, Any] = {}
            padang = await client.get(f"/v1/monev/tasks/{world.padang}", headers=headers)
            bogor = await client.get(f"/v1/monev/tasks/{world.bogor}", headers=headers)
            seen["read"] = (padang.status_code, bogor.status_code)
            listed = await client.get("/v1/monev/tasks", headers=headers)
            seen["listed"] = (
                {t["participant_id"] for t in listed.json()["items"]}
                if listed.status_code == 200
                else listed.status_code
            )
            history = await client.get(f"/v1/monev/tasks/{world.padang}/surveys", headers=headers)
            seen["history"] = history.status_code
            seen["notes"] = history.status_code == 200 and history.json()[0]["notes"] == NOTES
            summary = await client.get("/v1/monev/summary", params={"group_by": "province"}, headers=headers)
            seen["summary"] = (
                {g["group"] for g in summary.json()["groups"]} if summary.status_code == 200 else summary.status_code
            )
            assign = await client.post(
                f"/v1/monev/tasks/{world.padang}/assignment", json={"facilitator": "fac-1"}, headers=headers
            )
            seen["assign"] = assign.status_code
            submit = await client.post(f"/v1/monev/tasks/{world.padang}/survey", json=survey_body(), headers=headers)
            seen["submit"] = submit.status_code
            expected = {k: getattr(case, k) for k in seen}
            assert seen == expected, case.name
            for response in (padang, bogor, listed, history, summary, assign, submit):
                if response.status_code in (403, 404):
                    assert response.headers["content-type"].startswith("application/problem+json"), case.name
                    assert NOTES not in response.text
            if history.status_code == 200 and not case.notes:
                assert history.json()[0]["notes"] is None
                assert history.json()[0]["notes_withheld"] is True
                assert padang.json()["result"]["notes"] is None


async def test_an_out_of_reach_task_is_answered_like_a_missing_one(make_runtime, api, auth, settings) -> None:
    world = await _reach_world(make_runtime, api, auth)
    verifier = bearer(settings, "verifier", sub="ver-13", unit="13")
    facilitator = bearer(settings, "facilitator", sub="fac-1")
    missing_id = "00000000-0000-4000-8000-000000000000"
    async with api(world.runtime) as client:
        for headers, path in (
            (verifier, "/v1/monev/tasks/{}"),
            (verifier, "/v1/monev/tasks/{}/surveys"),
            (facilitator, "/v1/monev/tasks/{}"),
        ):
            out = await client.get(path.format(world.bogor), headers=headers)
            missing = await client.get(path.format(missing_id), headers=headers)
            assert out.status_code == missing.status_code == 404
            # the same problem, word for word, but for the id asked about and the request id
            assert {k: v for k, v in out.json().items() if k != "request_id"} == {
                k: v.replace(missing_id, world.bogor) if isinstance(v, str) else v
                for k, v in missing.json().items()
                if k != "request_id"
            }
        # a survey for another facilitator's task: 404, and nothing about the task in the answer
        out = await client.post(f"/v1/monev/tasks/{world.bogor}/survey", json=survey_body(), headers=facilitator)
        missing = await client.post(f"/v1/monev/tasks/{missing_id}/survey", json=survey_body(), headers=facilitator)
        assert out.status_code == missing.status_code == 404
        assert "3201011001" not in out.text
        assert "p-bogor" not in out.text
        # a list filter pointing outside the reach gives an empty list, not the other region's tasks
        outside = await client.get("/v1/monev/tasks", params={"region_prefix": "32"}, headers=verifier)
        assert outside.status_code == 200
        assert outside.json()["items"] == []
        wider = await client.get("/v1/monev/tasks", params={"participant_id": "p-bogor"}, headers=verifier)
        assert wider.json()["items"] == []
        # a summary of a region outside the unit is refused, naming the field
        refused = await client.get("/v1/monev/summary", params={"region_prefix": "32"}, headers=verifier)
        assert refused.status_code == 422
        assert refused.json()["errors"][0]["field"] == "region_prefix"


async def test_every_monev_route_declares_its_access_policy(make_runtime) -> None:
    runtime = await make_runtime([monev])
    app = create_app(runtime)
    # the kernel's own /v1/ops routes are the kernel's to declare
    assert [r for r in undeclared_routes(app) if not r.split(" ")[-1].startswith("/v1/ops/")] == []
    monev_routes = {k: v for k, v in route_policies(app).items() if " /v1/monev/" in k}
    assert len(monev_routes) == 13  # 9 of its own, 4 of the survey import (pena.http.imports)
    assert monev_routes["GET /v1/monev/tasks/{task_id}"] == Policy("monev:read", "assigned")
    assert monev_routes["POST /v1/monev/tasks/{task_id}/survey"] == Policy("monev:submit", "assigned")
    assert monev_routes["GET /v1/monev/summary"] == Policy("monev:read", "region")
    assert monev_routes["POST /v1/monev/facilitators"] == Policy("monev:assign", "national")
    # survey results in bulk: as one survey (a facilitator's rows reach only their tasks); a run is its uploader's
    assert monev_routes["POST /v1/monev/imports/surveys"] == Policy("monev:submit", "assigned")
    assert monev_routes["GET /v1/monev/imports/{import_id}"] == Policy("monev:submit", "assigned")
    assert monev_routes["GET /v1/monev/imports/templates/surveys"] == Policy("monev:submit", "none")


async def test_notes_stay_out_of_lists_audit_rows_and_the_idempotency_store(make_runtime, api, auth) -> None:
    world = await _reach_world(make_runtime, api, auth)
    facilitator = {**auth("facilitator", sub="fac-2"), "Idempotency-Key": "visit-bogor-1"}
    async with api(world.runtime) as client:
        first = await client.post(
            f"/v1/monev/tasks/{world.bogor}/survey", json=survey_body(notes=NOTES), headers=facilitator
        )
        assert first.status_code == 201, first.text
        assert first.json()["result"]["notes"] == NOTES  # the submitter reads their own notes back
        retry = await client.post(
            f"/v1/monev/tasks/{world.bogor}/survey", json=survey_body(notes=NOTES), headers=facilitator
        )
        assert retry.status_code == 201
        assert retry.json() == first.json()
        listed = await client.get("/v1/monev/tasks", headers=auth("verifier", unit="national"))
        assert NOTES not in listed.text
        assert {t["id"] for t in listed.json()["items"]} == {world.padang, world.bogor}
        await client.get(f"/v1/monev/tasks/{world.padang}", headers=auth("admin"))
        await client.get(f"/v1/monev/tasks/{world.padang}/surveys", headers=auth("verifier", unit="13"))

    async def stored(session: AsyncSession) -> tuple[list[Any], list[Any]]:
        keys = (await session.execute(select(idempotency_keys.c.response_body))).scalars().all()
        audits = (await session.execute(select(audit_log))).mappings().all()
        return list(keys), list(audits)

    keys, audits = await in_monev(world.runtime, stored)
    assert all(NOTES not in json.dumps(k) for k in keys)  # stored answers are sealed (pena.idempotency)
    opened = [unseal(k, world.runtime.settings) for k in keys if k]
    survey_keys = [k for k in opened if "survey_version" in k]
    assert survey_keys == [{"task_id": world.bogor, "survey_version": 1}]  # and even sealed, only ids
    assert all(NOTES not in json.dumps(k) for k in opened)
    assert all(NOTES not in json.dumps(dict(a), default=str) for a in audits)
    # a list read records which tasks it showed
    [listing] = [a for a in audits if a["action"] == "monev.task.listed"]
    assert sorted(listing["details"]["task_ids"]) == sorted([world.padang, world.bogor])
    shown = {
        (a["action"], a["actor"]): a["details"].get("notes_shown")
        for a in audits
        if "notes_shown" in (a["details"] or {})
    }
    assert shown[("monev.task.read", "dev-admin")] is True
    assert shown[("monev.survey.read", "dev-verifier")] is False
