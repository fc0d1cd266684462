"""Who may do what in the training service, on a real PostgreSQL: every route declares its policy
(pena.access); role x reach x route kind -> 200/403/404, tokens without, with an empty or a malformed
unit included; a centre operator enrols only participants of the regions their centre serves, an admin
overrides with an audited reason; the enrolment answers do not tell an operator whether an id outside
their reach exists or what its status is."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI

from pena.access import route_policies, undeclared_routes
from services.training.app import definition as training
from tests.support import audit_rows, bearer, outbox_events, publish, register, status_changed
from tests.training.support import batch_body, create_centre, open_batch

PADANG = "1371"  # Kota Padang; the Padang centre serves its villages
BANDUNG = "3273"  # Kota Bandung


def test_every_route_declares_its_policy() -> None:
    app = FastAPI()
    for router in training.routers:
        app.include_router(router)
    assert undeclared_routes(app) == []
    policies = route_policies(app)
    assert policies["POST /v1/training-centres"] is not None
    assert (policies["POST /v1/training-centres"].permission, policies["POST /v1/training-centres"].scope) == (
        "training:admin",
        "national",
    )
    reference_routes = ("GET /v1/batches/reference-data", "GET /v1/batches/reference-data/entry-policies")
    for route in reference_routes:  # reference data: not object-scoped
        reference = policies[route]
        assert reference is not None
        assert (reference.permission, reference.scope) == ("training:read", "none")
    # the backfill imports: templates are reference data; a run is its uploader's (pena/http/imports.py)
    imports = {
        key: (declared.permission, declared.scope) if declared else None
        for key, declared in policies.items()
        if "/imports" in key
    }
    assert imports["GET /v1/batches/imports/templates/attendance"] == ("training:read", "none")
    assert imports["GET /v1/batches/imports/{import_id}"] == ("training:write", "assigned")
    assert imports["GET /v1/batches/imports/{import_id}/errors"] == ("training:write", "assigned")
    assert imports["POST /v1/batches/imports/enrolments"] == ("training:write", "centre")
    assert len(imports) == 2 * 5 + 2
    for key, declared in policies.items():
        if key == "POST /v1/training-centres" or key in reference_routes or key in imports:
            continue
        assert declared is not None, key
        expected = "training:read" if key.startswith("GET ") else "training:write"
        assert (declared.permission, declared.scope) == (expected, "centre"), key


# role, unit claim (absent: no claim), sub -> expected answer per route kind:
#   read: GET the Padang batch; centre: GET the Padang centre; list: GET /v1/batches (status, whether
#   the Padang batch is among the items);
#   write: POST a batch at the Padang centre; admin: POST a centre.
_NO_UNIT = object()
PADANG_OPERATOR = "padang-operator"  # placeholders replaced by the centre ids at run time
BANDUNG_OPERATOR = "bandung-operator"
TABLE: list[tuple[str, str, object, dict[str, Any]]] = [
    ("admin", "admin", _NO_UNIT, {"read": 200, "centre": 200, "list": (200, True), "write": 201, "admin": 201}),
    (
        "integrator",
        "integrator",
        _NO_UNIT,
        {"read": 200, "centre": 200, "list": (200, True), "write": 403, "admin": 403},
    ),
    (
        "integrator 13",
        "integrator",
        "13",
        {"read": 200, "centre": 200, "list": (200, True), "write": 403, "admin": 403},
    ),
    (
        "integrator 32",
        "integrator",
        "32",
        {"read": 404, "centre": 404, "list": (200, False), "write": 403, "admin": 403},
    ),
    (
        "integrator abc",
        "integrator",
        "abc",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    (
        "operator own",
        "centre_operator",
        PADANG_OPERATOR,
        {"read": 200, "centre": 200, "list": (200, True), "write": 201, "admin": 403},
    ),
    (
        "operator other",
        "centre_operator",
        BANDUNG_OPERATOR,
        {"read": 404, "centre": 404, "list": (200, False), "write": 404, "admin": 403},
    ),
    (
        "operator no unit",
        "centre_operator",
        _NO_UNIT,
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    (
        "operator empty",
        "centre_operator",
        "",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    (
        "operator blank",
        "centre_operator",
        "  ",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    (
        "operator malformed",
        "centre_operator",
        "no such centre!",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    (
        "operator national",
        "centre_operator",
        "national",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    (
        "operator number",
        "centre_operator",
        42,
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    ("verifier 13", "verifier", "13", {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403}),
    (
        "verifier no unit",
        "verifier",
        _NO_UNIT,
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    ("verifier empty", "verifier", "", {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403}),
    (
        "verifier malformed",
        "verifier",
        "137",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
    ("approver", "approver", "13", {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403}),
    (
        "facilitator",
        "facilitator",
        "1371",
        {"read": 403, "centre": 403, "list": (403, False), "write": 403, "admin": 403},
    ),
]


async def test_role_by_reach_by_route_kind(runtime, api, auth, settings) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        padang = await create_centre(client, admin, code="BBPPKS-PADANG", region_code=PADANG)
        bandung = await create_centre(client, admin, code="BBPPKS-BANDUNG", region_code=BANDUNG)
        batch = await open_batch(client, admin, padang)
        seen: dict[str, dict[str, Any]] = {}
        for index, (label, role, unit, _) in enumerate(TABLE):
            centres = {PADANG_OPERATOR: padang, BANDUNG_OPERATOR: bandung}
            claim = centres.get(unit, unit) if isinstance(unit, str) else unit
            headers = (
                bearer(settings, role, sub=f"s-{index}")
                if unit is _NO_UNIT
                else bearer(settings, role, unit=claim, sub=f"s-{index}")
            )
            listed = await client.get("/v1/batches", headers=headers)
            created_centre = await client.post(
                "/v1/training-centres",
                json={"name": "Balai", "code": f"BALAI-{index}", "region_code": "13"},
                headers=headers,
            )
            seen[label] = {
                "read": (await client.get(f"/v1/batches/{batch['id']}", headers=headers)).status_code,
                "centre": (await client.get(f"/v1/training-centres/{padang}", headers=headers)).status_code,
                "list": (listed.status_code, batch["id"] in {b["id"] for b in listed.json().get("items", [])}),
                "write": (await client.post("/v1/batches", json=batch_body(padang), headers=headers)).status_code,
                "admin": created_centre.status_code,
            }
    assert seen == {label: expected for label, _, _, expected in TABLE}


async def test_lists_hold_only_what_the_reach_covers(runtime, api, auth, settings) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        padang = await create_centre(client, admin, code="BBPPKS-PADANG", region_code=PADANG)
        bandung = await create_centre(client, admin, code="BBPPKS-BANDUNG", region_code=BANDUNG)
        await open_batch(client, admin, padang)
        await open_batch(client, admin, bandung)
        west_sumatra = bearer(settings, "integrator", unit="13")
        centres = await client.get("/v1/training-centres", headers=west_sumatra)
        batches = await client.get("/v1/batches", headers=west_sumatra)
        asked_elsewhere = await client.get("/v1/training-centres", params={"region_prefix": "32"}, headers=west_sumatra)
        other_centre = await client.get("/v1/batches", params={"centre_id": bandung}, headers=west_sumatra)
        everything = await client.get("/v1/batches", headers=bearer(settings, "integrator"))
    assert [c["id"] for c in centres.json()["items"]] == [padang]
    assert {b["centre_id"] for b in batches.json()["items"]} == {padang}
    assert asked_elsewhere.json()["items"] == []
    assert other_centre.json()["items"] == []
    assert {b["centre_id"] for b in everything.json()["items"]} == {padang, bandung}


# ------------------------------------------------------------------ enrolment by the centre's regions


def _without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


async def _padang_batch(runtime, client, admin) -> tuple[str, str]:
    padang = await create_centre(client, admin, code="BBPPKS-PADANG", region_code=PADANG)
    batch = await open_batch(client, admin, padang)
    return padang, f"/v1/batches/{batch['id']}/enrolments"


async def test_an_operator_enrols_only_participants_of_the_regions_their_centre_serves(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-padang", region_code="1371011001")
    await register(runtime, "p-bandung", region_code="3273011001")
    await register(runtime, "p-solok", region_code="1372011001")  # West Sumatra, but not Kota Padang
    async with api(runtime) as client:
        padang, url = await _padang_batch(runtime, client, admin)
        operator = auth("centre_operator", unit=padang, sub="op-1")
        own = await client.post(url, json={"participant_id": "p-padang", "exit_agreement": True}, headers=operator)
        bandung = await client.post(url, json={"participant_id": "p-bandung", "exit_agreement": True}, headers=operator)
        solok = await client.post(url, json={"participant_id": "p-solok", "exit_agreement": True}, headers=operator)
    assert own.status_code == 201, own.text
    assert bandung.status_code == 422
    assert bandung.json()["type"].endswith("/participant_unknown")
    assert solok.status_code == 422
    assert [e["subject"] for e in await outbox_events(runtime, "training", "training.enrolled")] == ["p-padang"]


async def test_unknown_and_out_of_region_ids_answer_alike_and_only_reachable_ones_name_their_status(
    runtime, api, auth
) -> None:
    admin = auth("admin")
    await register(runtime, "p-away", region_code="3273011001")  # enrollable, elsewhere
    await register(runtime, "p-away-grad", region_code="3273011001", status="graduated")  # not, elsewhere
    await register(runtime, "p-home-grad", region_code="1371011001", status="graduated")  # not, at home
    async with api(runtime) as client:
        padang, url = await _padang_batch(runtime, client, admin)
        operator = auth("centre_operator", unit=padang, sub="op-1")
        answers = {
            pid: await client.post(url, json={"participant_id": pid, "exit_agreement": True}, headers=operator)
            for pid in ("p-never-registered", "p-away", "p-away-grad", "p-home-grad")
        }
    unknown = _without_request_id(answers["p-never-registered"].json())
    for pid in ("p-away", "p-away-grad"):
        assert answers[pid].status_code == 422, pid
        body = _without_request_id(answers[pid].json())
        assert body == {**unknown, "participant_id": pid, "detail": unknown["detail"]}, pid
        assert "participant_status" not in body
        assert "graduated" not in answers[pid].text
    assert unknown["type"].endswith("/participant_unknown")
    assert unknown["errors"][0]["field"] == "participant_id"
    home = answers["p-home-grad"]
    assert home.status_code == 422
    assert home.json()["type"].endswith("/participant_not_eligible")
    assert home.json()["participant_status"] == "graduated"


async def test_an_admin_enrols_out_of_region_only_with_a_reason_and_the_reason_is_audited(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-bandung", region_code="3273011001")
    async with api(runtime) as client:
        padang, url = await _padang_batch(runtime, client, admin)
        without = await client.post(url, json={"participant_id": "p-bandung", "exit_agreement": True}, headers=admin)
        operator = auth("centre_operator", unit=padang, sub="op-1")
        by_operator = await client.post(
            url,
            json={"participant_id": "p-bandung", "exit_agreement": True, "override_reason": "moved to Padang in May"},
            headers=operator,
        )
        with_reason = await client.post(
            url,
            json={"participant_id": "p-bandung", "exit_agreement": True, "override_reason": "moved to Padang in May"},
            headers=admin,
        )
    assert without.status_code == 422
    assert (without.json()["errors"][0]["field"], without.json()["errors"][0]["rule"]) == (
        "override_reason",
        "required_out_of_region",
    )
    assert by_operator.status_code == 403
    assert by_operator.json()["type"].endswith("/override_not_allowed")
    assert with_reason.status_code == 201, with_reason.text
    [row] = await audit_rows(runtime, "training", "training.enrolment.created")
    assert row.subject_id == "p-bandung"
    assert row.details["out_of_region"] is True
    assert row.details["override_reason"] == "moved to Padang in May"
    assert row.details["centre_region"] == PADANG


@pytest.mark.parametrize("reason", ["NIK 1371010101900001 moved", "KK1371010101900002"])
async def test_an_override_reason_holds_no_identity_number(runtime, api, auth, reason: str) -> None:
    admin = auth("admin")
    await register(runtime, "p-bandung", region_code="3273011001")
    async with api(runtime) as client:
        _, url = await _padang_batch(runtime, client, admin)
        refused = await client.post(
            url, json={"participant_id": "p-bandung", "exit_agreement": True, "override_reason": reason}, headers=admin
        )
    assert refused.status_code == 422
    assert (refused.json()["errors"][0]["field"], refused.json()["errors"][0]["rule"]) == (
        "override_reason",
        "no_identity_number",
    )


async def test_a_participant_whose_region_is_not_known_yet_is_not_enrolled_by_an_operator(runtime, api, auth) -> None:
    # a status change seen before the registration leaves the region empty: fail closed, as unknown
    admin = auth("admin")
    await publish(runtime, status_changed("p-early", to="active", version=2))
    async with api(runtime) as client:
        padang, url = await _padang_batch(runtime, client, admin)
        operator = auth("centre_operator", unit=padang, sub="op-1")
        answer = await client.post(url, json={"participant_id": "p-early", "exit_agreement": True}, headers=operator)
    assert answer.status_code == 422
    assert answer.json()["type"].endswith("/participant_unknown")
