"""Assessment of Monev results against the policy in force and the reference figures of the visit year."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.graduation.conftest import Env
from tests.graduation.support import SOLOK_VILLAGE, monev_result, publish_monev
from tests.support import Announcement, audit_actions, monev_publisher, outbox_data, participants_publisher, publish


async def assessments_of(env: Env, auth: Any, participant_id: str) -> list[dict[str, Any]]:
    answer = await env.client.get(
        "/v1/graduation/assessments", params={"participant_id": participant_id}, headers=auth("admin")
    )
    assert answer.status_code == 200, answer.text
    return answer.json()["items"]


def criterion(assessment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in assessment["criteria"] if c["criterion"] == name)


async def test_income_above_umk_is_ready_with_reasons(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, monev_result("p-ready", income=3_500_000, household_size=4))

    [assessment] = await assessments_of(env, auth, "p-ready")
    assert assessment["outcome"] == "ready"
    assert assessment["policy_version"] == 1
    wage = criterion(assessment, "household_income_at_least_minimum_wage")
    assert (wage["value"], wage["threshold"], wage["passed"]) == (3_500_000, 3_000_000, True)
    assert wage["note"].startswith("UMK 1371 2026")
    poverty = criterion(assessment, "income_per_member_above_poverty_line")
    assert (poverty["value"], poverty["threshold"], poverty["passed"]) == (875_000, 480_000, True)
    assert criterion(assessment, "business_active")["passed"] is True
    assert assessment["reference_values"]["minimum_wage"]["amount"] == 3_000_000
    assert assessment["reference_values"]["poverty_line"]["amount"] == 400_000

    [event] = await outbox_data(env.runtime, "graduation", "graduation.assessed")
    assert event["outcome"] == "ready"
    assert event["assessment_id"] == assessment["id"]
    assert "graduation.assessed" in await audit_actions(env.runtime, "graduation")


async def test_income_below_umk_is_not_ready_naming_the_criterion(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, monev_result("p-low", income=2_400_000, household_size=4))

    [assessment] = await assessments_of(env, auth, "p-low")
    assert assessment["outcome"] == "not_ready"
    failing = [c["criterion"] for c in assessment["criteria"] if c["passed"] is False]
    assert failing == ["household_income_at_least_minimum_wage"]


async def test_regency_without_umk_falls_back_to_ump_and_says_so(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, monev_result("p-solok", income=2_950_000, household_size=3, region=SOLOK_VILLAGE))

    [assessment] = await assessments_of(env, auth, "p-solok")
    wage = criterion(assessment, "household_income_at_least_minimum_wage")
    assert wage["threshold"] == 2_900_000
    assert wage["passed"] is True
    assert wage["note"].startswith("UMP fallback: no UMK for 1372 in 2026")
    assert assessment["outcome"] == "ready"
    assert assessment["reference_values"]["minimum_wage"]["level"] == "ump"


async def test_without_umk_or_ump_it_cannot_assess(env: Env, auth: Any) -> None:
    # province 94 has neither a UMK nor a UMP loaded for 2026
    await publish_monev(env.runtime, monev_result("p-papua", income=5_000_000, region="9471011001"))

    [assessment] = await assessments_of(env, auth, "p-papua")
    assert assessment["outcome"] == "cannot_assess"
    wage = criterion(assessment, "household_income_at_least_minimum_wage")
    assert wage["passed"] is None
    assert wage["note"] == "no UMK for 9471 and no UMP for 94 in 2026"


async def test_missing_poverty_line_cannot_assess(env: Env, auth: Any) -> None:
    admin = auth("admin")
    wage = await env.client.put(
        "/v1/graduation/reference/minimum-wages",
        json={"rows": [{"level": "umk", "region_code": "1371", "year": 2027, "amount": 3_100_000, "source": "t"}]},
        headers=admin,
    )
    assert wage.status_code == 200
    await publish_monev(env.runtime, monev_result("p-2027", income=5_000_000, visit=date(2027, 2, 1)))

    [assessment] = await assessments_of(env, auth, "p-2027")
    assert assessment["outcome"] == "cannot_assess"
    assert criterion(assessment, "income_per_member_above_poverty_line")["note"] == "no extreme-poverty line for 2027"


async def test_policy_change_leaves_old_assessments_unchanged(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, monev_result("p-old", income=3_500_000, household_size=4))
    [before] = await assessments_of(env, auth, "p-old")

    published = await env.client.post(
        "/v1/graduation/policies",
        json={
            "effective_from": "2026-02-01",
            "criteria": {"household_income_at_least_umk": True, "income_per_member_above_poverty_line_margin": 1.5},
            "note": "stricter margin",
        },
        headers=auth("admin"),
    )
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 2

    [after] = await assessments_of(env, auth, "p-old")
    assert after == before
    # a visit after the new version's effective date is assessed under v2 (875,000 <= 400,000 x 2.5)
    await publish_monev(env.runtime, monev_result("p-new", income=3_500_000, household_size=4, visit=date(2026, 2, 3)))
    [newer] = await assessments_of(env, auth, "p-new")
    assert newer["policy_version"] == 2
    assert newer["outcome"] == "not_ready"
    assert criterion(newer, "income_per_member_above_poverty_line")["threshold"] == 1_000_000

    policies = (await env.client.get("/v1/graduation/policies", headers=auth("integrator"))).json()
    assert [p["version"] for p in policies] == [1, 2]


async def test_newer_result_supersedes_and_late_older_one_does_not(env: Env, auth: Any) -> None:
    first = monev_result("p-sup", income=2_000_000, task_id="task-a", visit=date(2026, 1, 2))
    correction = monev_result("p-sup", income=3_600_000, task_id="task-a", submission_version=2, visit=date(2026, 1, 2))
    await publish_monev(env.runtime, first)
    await publish_monev(env.runtime, correction)
    # the same submission again (re-emitted, another event id) changes nothing
    await publish_monev(env.runtime, correction)
    # an earlier visit of another task arriving late must not replace the current assessment
    await publish_monev(env.runtime, monev_result("p-sup", income=100, task_id="task-0", visit=date(2025, 10, 1)))

    items = await assessments_of(env, auth, "p-sup")
    assert len(items) == 3
    current = [a for a in items if a["status"] == "current"]
    assert len(current) == 1
    assert current[0]["submission_version"] == 2
    assert current[0]["outcome"] == "ready"
    first_row = next(a for a in items if a["monev_task_id"] == "task-a" and a["submission_version"] == 1)
    assert first_row["status"] == "superseded"
    assert first_row["superseded_by_assessment_id"] == current[0]["id"]
    assert current[0]["supersedes_assessment_id"] == first_row["id"]
    late = next(a for a in items if a["monev_task_id"] == "task-0")
    assert late["status"] == "superseded"
    assert late["superseded_by_assessment_id"] == current[0]["id"]

    events = await outbox_data(env.runtime, "graduation", "graduation.assessed")
    assert [e["supersedes_assessment_id"] for e in events] == [None, first_row["id"]]


async def test_region_from_participant_read_model_when_monev_has_none(make_runtime: Any, api: Any, auth: Any) -> None:
    from datetime import UTC, datetime

    from pena.clock import ManualClock
    from pena.contracts.participants import ParticipantRegistered, ParticipantUpdated
    from services.graduation.app import definition as graduation
    from tests.graduation.conftest import START

    runtime = await make_runtime(
        [participants_publisher, monev_publisher, graduation], bus="inprocess", clock=ManualClock(START)
    )
    registered = ParticipantRegistered(
        participant_id="p-rm",
        version=1,
        registered_at=datetime(2025, 1, 1, tzinfo=UTC),
        region_code="1371011001",
        status="active",
        nik_token="0" * 64,
    )
    moved = ParticipantUpdated(
        participant_id="p-rm",
        version=2,
        changed_fields=["region_code"],
        updated_at=datetime(2025, 6, 1, tzinfo=UTC),
        region_code="1372011001",
        status="active",
    )
    # the newer version first: the older one arriving late must not overwrite it
    await publish(
        runtime,
        Announcement("participant.updated", moved, "p-rm", START),
        Announcement("participant.registered", registered, "p-rm", START),
    )
    await publish_monev(runtime, monev_result("p-rm", income=3_000_000, region=None, visit=date(2023, 7, 1)))

    async with api(runtime) as client:
        answer = await client.get("/v1/graduation/assessments", headers=auth("admin"))
    [assessment] = answer.json()["items"]
    assert assessment["region_code"] == "1372011001"
    # 2023 has an example UMK only for 1371, so Kota Solok falls back to nothing but the seeded UMP 13 2023
    assert criterion(assessment, "household_income_at_least_minimum_wage")["note"].startswith(
        "UMP fallback: no UMK for 1372 in 2023"
    )


async def test_assessment_list_pages_with_a_cursor(env: Env, auth: Any) -> None:
    for n in range(3):
        await publish_monev(env.runtime, monev_result(f"p-page-{n}", income=3_500_000))
        env.clock.advance("PT1M")
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(3):
        params: dict[str, str | int] = {"limit": 2, "outcome": "ready"}
        if cursor:
            params["cursor"] = cursor
        page = (await env.client.get("/v1/graduation/assessments", params=params, headers=auth("admin"))).json()
        seen += [a["participant_id"] for a in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["p-page-2", "p-page-1", "p-page-0"]
    bad = await env.client.get("/v1/graduation/assessments", params={"cursor": "%%%"}, headers=auth("admin"))
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "cursor"


async def test_reference_rows_are_validated_by_field_and_rule(env: Env, auth: Any) -> None:
    bad = await env.client.put(
        "/v1/graduation/reference/minimum-wages",
        content="level,region_code,year,amount,source\numk,1371,2026,3000000,ok\numk,13x1,2026,-5,bad\n",
        headers=auth("admin") | {"Content-Type": "text/csv"},
    )
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "line 3.region_code"
    assert bad.json()["errors"][0]["rule"] == "string_pattern_mismatch"
    nul = await env.client.put(
        "/v1/graduation/reference/poverty-lines",
        content="year,amount,source\n2026,400000,bps\x00\n",
        headers=auth("admin") | {"Content-Type": "text/csv"},
    )
    assert nul.status_code == 422
    assert nul.json()["errors"][0]["rule"] == "nul_character"
    not_utf8 = await env.client.put(
        "/v1/graduation/reference/poverty-lines",
        content=b'\x80k"',
        headers=auth("admin") | {"Content-Type": "application/json"},
    )
    assert not_utf8.status_code == 422
    assert not_utf8.json()["errors"][0]["rule"] == "utf8"
    far_year = await env.client.get(
        "/v1/graduation/reference/minimum-wages", params={"year": 94443541821}, headers=auth("admin")
    )
    assert far_year.status_code == 422
    assert far_year.json()["errors"][0]["field"] == "year"
    refused = await env.client.put(
        "/v1/graduation/reference/poverty-lines", json=[{"year": 2026, "amount": 1}], headers=auth("verifier")
    )
    assert refused.status_code == 403
    unknown = await env.client.post(
        "/v1/graduation/policies",
        json={"effective_from": "2026-03-01", "criteria": {"income_at_least_banana": True}},
        headers=auth("admin"),
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "criteria.income_at_least_banana"
    # seeded figures are there too, with their provenance
    lines = (await env.client.get("/v1/graduation/reference/poverty-lines", headers=auth("integrator"))).json()
    assert {line["year"]: line["amount"] for line in lines}[2023] == 351_957
