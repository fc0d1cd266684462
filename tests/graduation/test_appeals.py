"""Appeal rules (issue 13): the filer, the assessment's verifier and the original approver may not
decide an appeal; after a reversal a new decision on the same assessment needs a new verification (or
a new assessment)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.graduation.conftest import Env
from tests.graduation.test_decisions import ready_assessment
from tests.support import outbox_data

REVERSE = {"resolution": "reverse", "reason": "field evidence shows the business closed"}
APPROVE = {"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"}


async def _decided(env: Env, auth: Any, participant_id: str, *, verifier: dict[str, str]) -> tuple[str, str]:
    """A verified (by `verifier`) and approved (by abdi) assessment; returns its id and the decision id."""
    assessment_id = await ready_assessment(env, auth, participant_id)
    verified = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/verification",
        json={"evidence_checked": True, "notes": "receipts match"},
        headers=verifier,
    )
    assert verified.status_code == 201, verified.text
    decision = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision",
        json=APPROVE,
        headers=auth("approver", sub="abdi", unit="13"),
    )
    assert decision.status_code == 201, decision.text
    return assessment_id, str(decision.json()["id"])


async def _file(env: Env, decision_id: str, headers: dict[str, str]) -> str:
    filed = await env.client.post(
        f"/v1/graduation/decisions/{decision_id}/appeals", json={"grounds": "the business closed"}, headers=headers
    )
    assert filed.status_code == 201, filed.text
    return str(filed.json()["id"])


def _refused(answer: httpx.Response, status: int, rule: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["type"].endswith(rule)


async def test_the_filer_may_not_decide_their_own_appeal(env: Env, auth: Any) -> None:
    _, decision_id = await _decided(env, auth, "p-filer", verifier=auth("verifier", sub="vera", unit="13"))
    filer = auth("admin", sub="admin-ani")
    appeal_id = await _file(env, decision_id, filer)
    for resolution in (REVERSE, {"resolution": "uphold", "reason": "income verified twice"}):
        own = await env.client.post(f"/v1/graduation/appeals/{appeal_id}/decision", json=resolution, headers=filer)
        _refused(own, 403, "appeal_decider_conflict")
        assert own.json()["conflict"] == "filer"
    assert [e["status"] for e in await outbox_data(env.runtime, "graduation", "graduation.appealed")] == ["filed"]
    other = await env.client.post(
        f"/v1/graduation/appeals/{appeal_id}/decision", json=REVERSE, headers=auth("approver", sub="budi", unit="13")
    )
    assert other.status_code == 201, other.text


async def test_the_verifier_and_the_original_approver_may_not_decide_the_appeal(env: Env, auth: Any) -> None:
    verifier = auth("admin", sub="admin-vera")  # an admin verified the evidence (admins hold every scope)
    _, decision_id = await _decided(env, auth, "p-conflict", verifier=verifier)
    appeal_id = await _file(env, decision_id, auth("facilitator", sub="fasil", unit="1371"))

    by_verifier = await env.client.post(f"/v1/graduation/appeals/{appeal_id}/decision", json=REVERSE, headers=verifier)
    _refused(by_verifier, 403, "appeal_decider_conflict")
    assert by_verifier.json()["conflict"] == "verifier"
    by_approver = await env.client.post(
        f"/v1/graduation/appeals/{appeal_id}/decision", json=REVERSE, headers=auth("approver", sub="abdi", unit="13")
    )
    _refused(by_approver, 403, "appeal_decider_conflict")
    assert by_approver.json()["conflict"] == "original_approver"
    assert [e["outcome"] for e in await outbox_data(env.runtime, "graduation", "graduation.decided")] == ["approved"]


async def test_after_a_reversal_a_new_decision_needs_a_new_verification(env: Env, auth: Any) -> None:
    assessment_id, decision_id = await _decided(env, auth, "p-again", verifier=auth("verifier", sub="vera", unit="13"))
    appeal_id = await _file(env, decision_id, auth("facilitator", sub="fasil", unit="1371"))
    reversed_ = await env.client.post(
        f"/v1/graduation/appeals/{appeal_id}/decision", json=REVERSE, headers=auth("approver", sub="budi", unit="13")
    )
    assert reversed_.status_code == 201, reversed_.text

    # the original approver (or anyone) cannot simply approve the same assessment again
    for sub in ("abdi", "citra"):
        again = await env.client.post(
            f"/v1/graduation/assessments/{assessment_id}/decision",
            json=APPROVE,
            headers=auth("approver", sub=sub, unit="13"),
        )
        _refused(again, 409, "reassessment_required")
    assert [e["outcome"] for e in await outbox_data(env.runtime, "graduation", "graduation.decided")] == [
        "approved",
        "reversed",
    ]

    # a new verification after the reversal opens the assessment for a new decision (four eyes still hold)
    reverified = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/verification",
        json={"evidence_checked": True, "notes": "visited again after the objection"},
        headers=auth("verifier", sub="vanya", unit="13"),
    )
    assert reverified.status_code == 201, reverified.text
    assert reverified.json()["verified_by"] == "vanya"
    twice = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/verification",
        json={"evidence_checked": True},
        headers=auth("verifier", sub="vera", unit="13"),
    )
    _refused(twice, 409, "already_verified")
    same_person = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision", json=APPROVE, headers=auth("admin", sub="vanya")
    )
    _refused(same_person, 403, "four_eyes")
    decided = await env.client.post(
        f"/v1/graduation/assessments/{assessment_id}/decision",
        json=APPROVE,
        headers=auth("approver", sub="citra", unit="13"),
    )
    assert decided.status_code == 201, decided.text
