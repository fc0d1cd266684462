"""Verification, four-eyes decisions, appeals (keberatan) and the as-of statistics."""

from __future__ import annotations

from datetime import date
from typing import Any

from tests.graduation.conftest import Env
from tests.graduation.support import monev_result, publish_monev
from tests.support import outbox_data


async def ready_assessment(env: Env, auth: Any, participant_id: str, **kwargs: Any) -> str:
    await publish_monev(env.runtime, monev_result(participant_id, income=3_500_000, **kwargs))
    answer = await env.client.get(
        "/v1/graduation/assessments", params={"participant_id": participant_id}, headers=auth("admin")
    )
    [assessment] = answer.json()["items"]
    return str(assessment["id"])


async def verify(env: Env, auth: Any, assessment_id: str, sub: str = "vera") -> None:
    answer = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/verification",
        json={"evidence_checked": True, "notes": "visited; receipts and business photos match"},
        headers=auth("verifier", sub=sub, unit="13"),
    )
    assert answer.status_code == 201, answer.text


async def approve(env: Env, auth: Any, assessment_id: str, sub: str = "abdi", **body: Any) -> Any:
    return await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision",
        json={"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"} | body,
        headers=auth("approver", sub=sub, unit="1371"),
    )


async def test_the_verifier_cannot_also_approve(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-4eyes")
    early = await approve(env, auth, assessment_id, sub="vera")
    assert early.status_code == 409
    assert early.json()["type"].endswith("verification_required")

    await verify(env, auth, assessment_id, sub="vera")
    same_person = await approve(env, auth, assessment_id, sub="vera")
    assert same_person.status_code == 403
    assert same_person.json()["type"].endswith("four_eyes")
    assert await outbox_data(env.runtime, "graduation", "graduation.decided") == []

    other = await approve(env, auth, assessment_id, sub="abdi")
    assert other.status_code == 201, other.text
    again = await approve(env, auth, assessment_id, sub="budi")
    assert again.status_code == 409
    assert again.json()["type"].endswith("already_decided")


async def test_approval_emits_decided_with_mentoring_until(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-approve")
    await verify(env, auth, assessment_id)
    answer = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision",
        json={"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"},
        headers=auth("approver", sub="abdi", unit="1371") | {"Idempotency-Key": "approve-p-approve"},
    )
    assert answer.status_code == 201, answer.text
    # a retry with the same key answers the first response and decides nothing new
    retry = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision",
        json={"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"},
        headers=auth("approver", sub="abdi", unit="1371") | {"Idempotency-Key": "approve-p-approve"},
    )
    assert retry.status_code == 201
    assert retry.json()["id"] == answer.json()["id"]

    [event] = await outbox_data(env.runtime, "graduation", "graduation.decided")
    assert event["participant_id"] == "p-approve"
    assert event["outcome"] == "approved"
    assert event["graduated"] is True
    assert event["kind"] == "sejahtera_mandiri"
    assert event["effective_date"] == "2026-01-05"  # today on the injected clock (WIB)
    assert event["mentoring_until"] == "2026-05-05"  # + P4M
    assert event["decision_id"] == answer.json()["id"]

    listed = await env.client.get("/v1/graduation/decisions", headers=auth("integrator"))
    assert [d["id"] for d in listed.json()["items"]] == [event["decision_id"]]


async def test_sejahtera_mandiri_needs_ready_and_the_voluntary_statement(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-novol", voluntary=False)
    await verify(env, auth, assessment_id)
    refused = await approve(env, auth, assessment_id)
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("voluntary_statement_missing")
    missing_kind = await approve(env, auth, assessment_id, kind=None)
    assert missing_kind.status_code == 422
    assert missing_kind.json()["errors"][0]["field"] == "kind"
    deferred = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision",
        json={"decision": "defer", "reason": "await the family's statement"},
        headers=auth("approver", sub="abdi", unit="13"),
    )
    assert deferred.status_code == 201
    assert deferred.json()["outcome"] == "deferred"


async def test_units_only_see_their_region(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-unit")
    elsewhere = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/verification",
        json={"evidence_checked": True},
        headers=auth("verifier", sub="vera", unit="3171"),
    )
    assert elsewhere.status_code == 404
    read = await env.client.get(f"/v1/graduation/assessments/{assessment_id}", headers=auth("verifier", unit="3171"))
    assert read.status_code == 404
    listed = await env.client.get("/v1/graduation/assessments", headers=auth("verifier", unit="3171"))
    assert listed.json()["items"] == []
    own = await env.client.get(f"/v1/graduation/assessments/{assessment_id}", headers=auth("verifier", unit="1371"))
    assert own.status_code == 200


async def test_appeal_reversal_emits_decided_reversed(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-appeal")
    await verify(env, auth, assessment_id)
    decision = (await approve(env, auth, assessment_id, sub="abdi")).json()

    env.clock.advance("P10D")
    filed = await env.client.post(
        f"/v1/graduation/decisions/{decision['id']}/appeals",
        json={"grounds": "the business closed after the visit; the family still needs assistance"},
        headers=auth("facilitator", sub="fasil", unit="137101"),
    )
    assert filed.status_code == 201, filed.text
    appeal = filed.json()
    twice = await env.client.post(
        f"/v1/graduation/decisions/{decision['id']}/appeals",
        json={"grounds": "again"},
        headers=auth("facilitator", sub="fasil", unit="137101"),
    )
    assert twice.status_code == 409

    same_approver = await env.client.post(
        f"/v1/graduation/appeals/{appeal['id']}/decision",
        json={"resolution": "reverse", "reason": "field evidence shows the business closed"},
        headers=auth("approver", sub="abdi", unit="13"),
    )
    assert same_approver.status_code == 403
    assert same_approver.json()["type"].endswith("appeal_decider_conflict")
    assert same_approver.json()["conflict"] == "original_approver"

    reversed_ = await env.client.post(
        f"/v1/graduation/appeals/{appeal['id']}/decision",
        json={"resolution": "reverse", "reason": "field evidence shows the business closed"},
        headers=auth("approver", sub="budi", unit="13"),
    )
    assert reversed_.status_code == 201, reversed_.text
    assert reversed_.json()["status"] == "reversed"

    decided = await outbox_data(env.runtime, "graduation", "graduation.decided")
    assert [e["outcome"] for e in decided] == ["approved", "reversed"]
    reversal = decided[1]
    assert reversal["graduated"] is False
    assert reversal["supersedes_decision_id"] == decision["id"]
    assert reversal["decision_id"] == reversed_.json()["reversal_decision_id"]
    appealed = await outbox_data(env.runtime, "graduation", "graduation.appealed")
    assert [e["status"] for e in appealed] == ["filed", "reversed"]

    original = await env.client.get(f"/v1/graduation/decisions/{decision['id']}", headers=auth("integrator"))
    assert original.json()["reversed_by_appeal_id"] == appeal["id"]


async def test_appeal_after_the_window_is_refused(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-late")
    await verify(env, auth, assessment_id)
    decision = (await approve(env, auth, assessment_id)).json()
    env.clock.advance("P31D")
    late = await env.client.post(
        f"/v1/graduation/decisions/{decision['id']}/appeals",
        json={"grounds": "too late"},
        headers=auth("facilitator", sub="fasil", unit="1371"),
    )
    assert late.status_code == 409
    assert late.json()["type"].endswith("appeal_window_closed")
    assert [e["outcome"] for e in await outbox_data(env.runtime, "graduation", "graduation.decided")] == ["approved"]


async def test_appeal_upheld_keeps_the_decision(env: Env, auth: Any) -> None:
    assessment_id = await ready_assessment(env, auth, "p-upheld")
    await verify(env, auth, assessment_id)
    decision = (await approve(env, auth, assessment_id)).json()
    appeal = (
        await env.client.post(
            f"/v1/graduation/decisions/{decision['id']}/appeals",
            json={"grounds": "objection"},
            headers=auth("facilitator", sub="fasil", unit="1371"),
        )
    ).json()
    upheld = await env.client.post(
        f"/v1/graduation/appeals/{appeal['id']}/decision",
        json={"resolution": "uphold", "reason": "income verified twice"},
        headers=auth("approver", sub="budi", unit="13"),
    )
    assert upheld.status_code == 201
    assert upheld.json()["status"] == "upheld"
    assert [e["status"] for e in await outbox_data(env.runtime, "graduation", "graduation.appealed")] == [
        "filed",
        "upheld",
    ]
    assert [e["outcome"] for e in await outbox_data(env.runtime, "graduation", "graduation.decided")] == ["approved"]


async def statistics(env: Env, auth: Any, as_of: str, **params: Any) -> dict[str, Any]:
    answer = await env.client.get(
        "/v1/graduation/statistics", params={"as_of": as_of, **params}, headers=auth("integrator")
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


async def test_statistics_as_of_a_past_date_ignore_later_decisions(env: Env, auth: Any) -> None:
    first = await ready_assessment(env, auth, "p-s1")  # visited 3 January, assessed 5 January
    await ready_assessment(env, auth, "p-s2", region="1372011001", centre_id="bbppks-padang")
    await publish_monev(env.runtime, monev_result("p-s3", income=1_000_000))  # not ready: counted nowhere
    await verify(env, auth, first)
    before_approval = env.clock.now().isoformat()

    env.clock.advance("P15D")  # 20 January 2026
    assert (await approve(env, auth, first)).status_code == 201  # effective 20 January

    before = await statistics(env, auth, "2026-01-10")
    assert before["totals"]["persons"] == {"ready": 2, "graduated": 0, "deferred": 0, "rejected": 0}
    after = await statistics(env, auth, "2026-01-20", group_by="region")
    assert after["totals"]["persons"]["ready"] == 1
    assert after["totals"]["persons"]["graduated"] == 1
    by_region = {g["key"]: g for g in after["groups"]}
    assert by_region["1371"]["persons"]["graduated"] == 1
    assert by_region["1371"]["name"] == "Kota Padang"
    assert by_region["1372"]["persons"]["ready"] == 1
    assert by_region["1372"]["name"] == "Kota Solok"
    earlier = await statistics(env, auth, "2026-01-02")  # before any visit
    assert earlier["totals"]["persons"]["ready"] == 0
    visited = await statistics(env, auth, "2026-01-04")  # visited on the 3rd, although assessed on the 5th
    assert visited["totals"]["persons"]["ready"] == 2
    by_kind = await statistics(env, auth, "2026-01-20", group_by="kind")
    [kind] = [g for g in by_kind["groups"] if g["key"] == "sejahtera_mandiri"]
    assert kind["persons"]["graduated"] == 1
    assert kind["name"] == "Graduasi sejahtera mandiri (self-reliant)"
    # as the system knew it before the approval was recorded: nobody graduated yet, on any date
    then = await statistics(env, auth, "2026-01-20", known_at=before_approval)
    assert then["totals"]["persons"] == {"ready": 2, "graduated": 0, "deferred": 0, "rejected": 0}
    assert then["known_at"] == before_approval.replace("+00:00", "Z")


async def test_statistics_for_a_2023_backfill(env: Env, auth: Any) -> None:
    """ "How many KPM were ready to graduate as of 31 July 2023" is one request, also for a visit made
    in July 2023 and loaded in 2026: as_of is the date the family's situation was measured."""
    await publish_monev(env.runtime, monev_result("p-2023", income=3_000_000, visit=date(2023, 7, 20)))
    answer = await statistics(env, auth, "2026-01-05", group_by="centre")
    [group] = answer["groups"]
    assert group["key"] == "bbppks-padang"
    assert group["persons"] == {"ready": 1, "graduated": 0, "deferred": 0, "rejected": 0}
    # visited 20 July 2023 (assessed on 5 January 2026, the clock): counted on 31 July 2023
    assert (await statistics(env, auth, "2023-07-31"))["totals"]["persons"]["ready"] == 1
    assert (await statistics(env, auth, "2023-07-19"))["totals"]["persons"]["ready"] == 0
