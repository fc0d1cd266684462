"""Who reaches which graduation records (pena.access): every route declares its policy; role x reach x
route kind -> 200 / 403 / 404 (or the process rule's 409 once the record is reached); lists and
statistics narrow to the reach; a record out of reach answers exactly like a missing one."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI

from pena.access import undeclared_routes
from services.graduation.api import router
from tests.graduation.conftest import Env
from tests.graduation.support import monev_result, publish_monev

JAKARTA_VILLAGE = "3171011001"  # no minimum wage loaded for 31: cannot_assess, never counted ready

FORBIDDEN = 403


def test_every_graduation_route_declares_a_policy() -> None:
    app = FastAPI()
    app.include_router(router)
    assert undeclared_routes(app) == []


async def _records(env: Env, auth: Any) -> tuple[str, str]:
    """p-in (Padang, 13.71): an older, superseded assessment and a current ready one; p-far (Jakarta)."""
    await publish_monev(env.runtime, monev_result("p-in", income=3_500_000, visit=date(2026, 1, 2)))
    await publish_monev(env.runtime, monev_result("p-in", income=3_600_000, visit=date(2026, 1, 3)))
    await publish_monev(env.runtime, monev_result("p-far", income=3_500_000, region=JAKARTA_VILLAGE))
    listed = await env.client.get(
        "/v1/graduation/assessments", params={"participant_id": "p-in"}, headers=auth("admin")
    )
    by_status = {a["status"]: a["id"] for a in listed.json()["items"]}
    return by_status["current"], by_status["superseded"]


# role, token claims -> read one, list (participants visible), write (verify), statistics (ready count)
# write: the only record a write may touch here is superseded, so a caller who reaches it gets the
# process rule's 409 `assessment_superseded` and nothing changes
MATRIX: list[tuple[str, dict[str, str], int, set[str] | int, int, int]] = [
    ("admin", {}, 200, {"p-in", "p-far"}, 409, 1),
    ("integrator", {}, 200, {"p-in", "p-far"}, FORBIDDEN, 1),
    ("integrator", {"unit": "3171"}, 404, {"p-far"}, FORBIDDEN, 0),
    ("integrator", {"unit": "abc"}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("verifier", {"unit": "13"}, 200, {"p-in"}, 409, 1),
    ("verifier", {"unit": "13.71"}, 200, {"p-in"}, 409, 1),
    ("verifier", {"unit": "national"}, 200, {"p-in", "p-far"}, 409, 1),
    ("verifier", {"unit": "3171"}, 404, {"p-far"}, 404, 0),
    ("verifier", {}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),  # no unit: nothing, not national
    ("verifier", {"unit": " "}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),  # empty unit
    ("verifier", {"unit": "abc"}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),  # malformed unit
    ("verifier", {"unit": "137"}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),  # not a region level
    ("approver", {"unit": "1371"}, 200, {"p-in"}, FORBIDDEN, 1),
    ("approver", {}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
    ("facilitator", {"unit": "1371"}, 200, {"p-in"}, FORBIDDEN, 1),
    ("facilitator", {}, 404, set(), FORBIDDEN, 0),  # issue 13: listed every region before
    ("facilitator", {"unit": " "}, 404, set(), FORBIDDEN, 0),
    ("facilitator", {"unit": "abc"}, 404, set(), FORBIDDEN, 0),
    ("centre_operator", {"unit": "bbppks-padang"}, FORBIDDEN, FORBIDDEN, FORBIDDEN, FORBIDDEN),
]


async def test_role_x_reach_x_route_kind(env: Env, auth: Any) -> None:
    current, superseded = await _records(env, auth)
    seen: list[tuple[Any, ...]] = []
    expected: list[tuple[Any, ...]] = []
    for role, claims, read, listed, write, ready in MATRIX:
        headers = auth(role, sub=f"who-{role}", **claims)
        got_read = await env.client.get(f"/v1/graduation/assessments/{current}", headers=headers)
        got_list = await env.client.get("/v1/graduation/assessments", headers=headers)
        got_write = await env.client.post(
            f"/v1/graduation/assessments/{superseded}/verification", json={"evidence_checked": True}, headers=headers
        )
        got_stats = await env.client.get("/v1/graduation/statistics", params={"as_of": "2026-01-05"}, headers=headers)
        for answer in (got_read, got_list, got_write, got_stats):
            if answer.status_code >= 400:
                assert answer.headers["content-type"].startswith("application/problem+json"), answer.text
        seen.append(
            (
                role,
                claims,
                got_read.status_code,
                {a["participant_id"] for a in got_list.json()["items"]}
                if got_list.status_code == 200
                else got_list.status_code,
                got_write.status_code,
                (
                    got_stats.json()["totals"]["persons"]["ready"]
                    if got_stats.status_code == 200
                    else got_stats.status_code
                ),
            )
        )
        expected.append((role, claims, read, listed, write, ready))
    assert seen == expected


async def test_out_of_reach_answers_like_a_missing_record(env: Env, auth: Any) -> None:
    current, _ = await _records(env, auth)
    elsewhere = auth("verifier", sub="vera-jkt", unit="3171")
    real = await env.client.get(f"/v1/graduation/assessments/{current}", headers=elsewhere)
    missing = await env.client.get("/v1/graduation/assessments/no-such-assessment", headers=elsewhere)
    assert real.status_code == missing.status_code == 404
    ignored = {"detail": None, "instance": None, "request_id": None}
    assert real.json() | ignored == missing.json() | ignored
    assert real.json()["detail"].replace(current, "X") == missing.json()["detail"].replace("no-such-assessment", "X")
    # a list filtered on another unit's participant or region reveals nothing either
    by_id = await env.client.get("/v1/graduation/assessments", params={"participant_id": "p-in"}, headers=elsewhere)
    assert by_id.json()["items"] == []
    by_region = await env.client.get("/v1/graduation/assessments", params={"region": "13"}, headers=elsewhere)
    assert by_region.json()["items"] == []
    stats = await env.client.get(
        "/v1/graduation/statistics", params={"as_of": "2026-01-05", "region": "1371"}, headers=elsewhere
    )
    assert stats.json()["totals"]["persons"]["ready"] == 0


@pytest.mark.parametrize("unit", [None, " ", "abc"])
async def test_a_facilitator_without_a_region_sees_no_decisions(env: Env, auth: Any, unit: str | None) -> None:
    current, _ = await _records(env, auth)
    admin = auth("admin", sub="admin-vera")
    assert (
        await env.client.post(
            f"/v1/graduation/assessments/{current}/verification", json={"evidence_checked": True}, headers=admin
        )
    ).status_code == 201
    decision = await env.client.post(
        f"/v1/graduation/assessments/{current}/decision",
        json={"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"},
        headers=auth("approver", sub="abdi", unit="13"),
    )
    assert decision.status_code == 201, decision.text
    decision_id = decision.json()["id"]
    facilitator = auth("facilitator", sub="fasil", unit=unit)
    listed = await env.client.get("/v1/graduation/decisions", headers=facilitator)
    assert listed.status_code == 200
    assert listed.json()["items"] == []
    assert (await env.client.get(f"/v1/graduation/decisions/{decision_id}", headers=facilitator)).status_code == 404
    appeal = await env.client.post(
        f"/v1/graduation/decisions/{decision_id}/appeals", json={"grounds": "objection"}, headers=facilitator
    )
    assert appeal.status_code == 404
    # the same facilitator with the region files it
    own = auth("facilitator", sub="fasil", unit="1371")
    assert (await env.client.get(f"/v1/graduation/decisions/{decision_id}", headers=own)).status_code == 200
