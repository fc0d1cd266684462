"""Mentoring after graduation in graduation (issue 14 item 5) on real PostgreSQL: a decision carries the
mentoring schedule of its policy version; a mentoring visit (monev.completed kind mentoring) below the
extreme-poverty line of its year raises graduation.relapse_flagged and records one relapse case that
case workers list within their reach; above the line nothing is flagged; redeliveries change nothing;
mentoring visits never become readiness assessments."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from pena.clock import ManualClock
from pena.consumer import deliver
from pena.contracts.monev import MonevCompleted
from services.graduation.app import definition as graduation
from services.graduation.models import RelapseCase
from tests.graduation.conftest import START, Env
from tests.graduation.support import monev_result, publish_monev
from tests.graduation.test_decisions import approve, ready_assessment, verify
from tests.support import (
    PADANG_VILLAGE,
    audit_rows,
    count_rows,
    in_service,
    monev_publisher,
    outbox_data,
    outbox_events,
    participants_publisher,
    publish,
    register,
    status_changed,
)


def mentoring_visit(participant_id: str, *, income: int, task_id: str, submission_version: int = 1) -> MonevCompleted:
    """The six-month mentoring visit of decision d-1 (Rp 400,000 is the 2026 line in these tests)."""
    result = monev_result(participant_id, income=income, task_id=task_id, submission_version=submission_version)
    return result.model_copy(update={"kind": "mentoring", "decision_id": "d-1", "wave": "P6M"})


async def test_a_decision_carries_the_mentoring_schedule_of_its_policy(env: Env, auth: Any) -> None:
    first = await ready_assessment(env, auth, "p-default")
    await verify(env, auth, first)
    approved = await approve(env, auth, first)
    assert approved.status_code == 201, approved.text
    assert approved.json()["mentoring_follow_ups"] == ["P6M", "P12M"]  # the seeded policy's

    admin = auth("admin", sub="policy-admin")
    wrong = await env.client.post(
        "/v1/graduation/policies",
        json={"effective_from": "2026-01-01", "criteria": {"mentoring_follow_ups": ["6 months"]}},
        headers=admin,
    )
    assert wrong.status_code == 422, wrong.text
    assert wrong.json()["errors"][0]["field"] == "criteria.mentoring_follow_ups.0"
    published = await env.client.post(
        "/v1/graduation/policies",
        json={"effective_from": "2026-01-01", "criteria": {"mentoring_follow_ups": ["P3M", "P9M", "P1Y"]}},
        headers=admin,
    )
    assert published.status_code == 201, published.text
    second = await ready_assessment(env, auth, "p-v2")  # visited 3 January 2026: the new version applies
    await verify(env, auth, second)
    assert (await approve(env, auth, second)).status_code == 201
    rejected = await ready_assessment(env, auth, "p-rejected")
    await verify(env, auth, rejected)
    no = await env.client.post(
        f"/v1/graduation/assessments/{rejected}/decision",
        json={"decision": "reject", "reason": "evidence incomplete"},
        headers=auth("approver", sub="abdi", unit="13"),
    )
    assert no.status_code == 201, no.text

    events = await outbox_data(env.runtime, "graduation", "graduation.decided")
    assert [(e["participant_id"], e["mentoring_follow_ups"]) for e in events] == [
        ("p-default", ["P6M", "P12M"]),
        ("p-v2", ["P3M", "P9M", "P1Y"]),
        ("p-rejected", []),
    ]


async def test_a_mentoring_visit_below_the_poverty_line_flags_a_relapse(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, mentoring_visit("p-relapse", income=1_200_000, task_id="t-six"))

    [flagged] = await outbox_data(env.runtime, "graduation", "graduation.relapse_flagged")
    assert flagged == {
        "relapse_id": flagged["relapse_id"],
        "participant_id": "p-relapse",
        "decision_id": "d-1",
        "monev_task_id": "t-six",
        "submission_version": 1,
        "wave": "P6M",
        "visit_date": "2026-01-03",
        "income_per_member": 300_000,
        "poverty_line": 400_000,
        "poverty_line_year": 2026,
        "flagged_at": flagged["flagged_at"],
    }
    # a visit after graduation is not a readiness assessment: nothing is assessed or superseded
    assert await outbox_events(env.runtime, "graduation", "graduation.assessed") == []

    listed = await env.client.get("/v1/graduation/relapses", headers=auth("verifier", sub="vera", unit="13"))
    assert listed.status_code == 200, listed.text
    [case] = listed.json()["items"]
    assert case["id"] == flagged["relapse_id"]
    assert (case["status"], case["income_per_member"], case["poverty_line"], case["region_code"]) == (
        "open",
        300_000,
        400_000,
        "1371011001",
    )
    assert (case["monthly_household_income"], case["household_size"]) == (1_200_000, 4)
    one = await env.client.get(f"/v1/graduation/relapses/{case['id']}", headers=auth("approver", unit="1371"))
    assert one.status_code == 200, one.text
    listed_rows = await audit_rows(env.runtime, "graduation", "graduation.relapses.listed")
    assert [r.subject_id for r in listed_rows] == [case["id"]]

    # out of reach: an empty list and 404 exactly like a missing case
    elsewhere = auth("verifier", sub="vino", unit="32")
    assert (await env.client.get("/v1/graduation/relapses", headers=elsewhere)).json()["items"] == []
    hidden = await env.client.get(f"/v1/graduation/relapses/{case['id']}", headers=elsewhere)
    missing = await env.client.get("/v1/graduation/relapses/no-such-case", headers=elsewhere)
    assert (hidden.status_code, missing.status_code) == (404, 404)
    assert hidden.json()["type"] == missing.json()["type"]


async def test_a_mentoring_visit_above_the_line_flags_nothing(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, mentoring_visit("p-fine", income=2_000_000, task_id="t-fine"))  # 500,000 each
    assert await outbox_events(env.runtime, "graduation", "graduation.relapse_flagged") == []
    assert await outbox_events(env.runtime, "graduation", "graduation.assessed") == []
    assert (await env.client.get("/v1/graduation/relapses", headers=auth("admin"))).json()["items"] == []
    [checked] = await audit_rows(env.runtime, "graduation", "graduation.mentoring.checked")
    assert checked.details["relapse"] is False


async def test_redelivery_keeps_one_case_and_corrections_update_or_clear_it(env: Env, auth: Any) -> None:
    visit = mentoring_visit("p-again", income=1_000_000, task_id="t-again")
    await publish_monev(env.runtime, visit)
    await publish_monev(env.runtime, visit)  # re-announced: a new event id, the same task and version
    envelope = (await outbox_events(env.runtime, "monev", "monev.completed"))[0]
    origin = f"{env.runtime.settings.topic('monev')}/0/1"
    subscriber = env.runtime.service("graduation").subscriber
    assert subscriber is not None
    assert await deliver(subscriber, envelope, origin=origin) == "duplicate"

    [case] = (await env.client.get("/v1/graduation/relapses", headers=auth("admin"))).json()["items"]
    assert len(await outbox_events(env.runtime, "graduation", "graduation.relapse_flagged")) == 1

    # a corrected survey still below the line: the same case, updated, announced with the new version
    await publish_monev(
        env.runtime, mentoring_visit("p-again", income=1_400_000, task_id="t-again", submission_version=2)
    )
    flagged = await outbox_data(env.runtime, "graduation", "graduation.relapse_flagged")
    assert [(f["relapse_id"], f["submission_version"], f["income_per_member"]) for f in flagged] == [
        (case["id"], 1, 250_000),
        (case["id"], 2, 350_000),
    ]
    # corrected above the line: the case is cleared, nothing new is flagged
    await publish_monev(
        env.runtime, mentoring_visit("p-again", income=2_400_000, task_id="t-again", submission_version=3)
    )
    [cleared] = (await env.client.get("/v1/graduation/relapses", headers=auth("admin"))).json()["items"]
    assert (cleared["id"], cleared["status"], cleared["submission_version"]) == (case["id"], "cleared", 3)
    assert len(await outbox_events(env.runtime, "graduation", "graduation.relapse_flagged")) == 2
    open_only = await env.client.get("/v1/graduation/relapses", params={"status": "open"}, headers=auth("admin"))
    assert open_only.json()["items"] == []


async def test_erasure_deletes_the_family_s_relapse_cases(make_runtime: Any) -> None:
    clock = ManualClock(START)
    runtime = await make_runtime([monev_publisher, participants_publisher, graduation], clock=clock)
    await register(runtime, "p-erase", "p-kept", region_code=PADANG_VILLAGE)
    for pid in ("p-erase", "p-kept"):  # 2025: the seeded line (about Rp 391,000) applies
        visit = mentoring_visit(pid, income=1_000_000, task_id=f"t-{pid}")
        await publish_monev(runtime, visit.model_copy(update={"visit_date": date(2025, 9, 1)}))
    assert await count_rows(runtime, "graduation", RelapseCase) == 2

    await publish(runtime, status_changed("p-erase", to="erased", version=2))
    stored = await in_service(runtime, "graduation", lambda s: s.execute(select(col(RelapseCase.participant_id))))
    assert [row[0] for row in stored] == ["p-kept"]
    [erased] = await audit_rows(runtime, "graduation", "graduation.participant.erased")
    assert (erased.subject_id, erased.details["relapse_cases"]) == ("p-erase", 1)
    # a late mentoring visit of the erased family keeps nothing either
    late = mentoring_visit("p-erase", income=900_000, task_id="t-late")
    await publish_monev(runtime, late.model_copy(update={"visit_date": date(2025, 10, 1)}))
    assert await count_rows(runtime, "graduation", RelapseCase) == 1
    assert len(await outbox_events(runtime, "graduation", "graduation.relapse_flagged")) == 2
