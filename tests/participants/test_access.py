from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy import select

from pena.access import undeclared_routes
from pena.tables import audit_log
from services.participants.api import router
from tests.participants.support import WOMAN_NIK, man, woman
from tests.support import bearer


async def test_facilitator_sees_only_their_unit_and_out_of_scope_is_404(registry, auth) -> None:
    padang = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    bukittinggi = (
        await registry.client.post("/v1/participants", json=man(region_code="1375011001"), headers=registry.admin)
    ).json()
    padang_facilitator = auth("facilitator", unit="1371", sub="fac-padang")
    other_facilitator = auth("facilitator", unit="1375", sub="fac-bkt")

    own = await registry.client.get(f"/v1/participants/{padang['id']}", headers=padang_facilitator)
    assert own.status_code == 200
    assert own.json()["nik"] == "1371**********01"
    out_of_scope = await registry.client.get(f"/v1/participants/{padang['id']}", headers=other_facilitator)
    missing = await registry.client.get("/v1/participants/no-such-id", headers=other_facilitator)
    assert out_of_scope.status_code == missing.status_code == 404
    assert out_of_scope.json()["detail"].replace(padang["id"], "X") == missing.json()["detail"].replace(
        "no-such-id", "X"
    )
    listed = await registry.client.get("/v1/participants", headers=padang_facilitator)
    assert [p["id"] for p in listed.json()["items"]] == [padang["id"]]
    looked_up = await registry.client.post(
        "/v1/participants/lookup", json={"nik": WOMAN_NIK}, headers=other_facilitator
    )
    assert looked_up.status_code == 404
    history = await registry.client.get(f"/v1/participants/{bukittinggi['id']}/history", headers=padang_facilitator)
    assert history.status_code == 404


async def test_facilitator_cannot_write_and_unitless_operator_sees_nothing(registry, auth) -> None:
    created = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    refused = await registry.client.post("/v1/participants", json=man(), headers=auth("facilitator", unit="1371"))
    assert refused.status_code == 403
    centre_id_unit = auth("centre_operator", unit="bbppks-padang")
    assert (await registry.client.get(f"/v1/participants/{created['id']}", headers=centre_id_unit)).status_code == 404
    assert (await registry.client.get("/v1/participants", headers=centre_id_unit)).json()["items"] == []


async def test_reads_and_lookups_are_audited_with_pseudonymous_ids(registry) -> None:
    created = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    found = await registry.client.post(
        "/v1/participants/lookup",
        json={"nik": WOMAN_NIK},
        headers={**registry.integrator, "X-Purpose": "payment check"},
    )
    assert found.json()["id"] == created["id"]
    await registry.client.get(f"/v1/participants/{created['id']}", headers=registry.integrator)
    async with registry.runtime.service("participants").db.transaction() as session:
        rows = (await session.execute(select(audit_log).order_by(audit_log.c.id))).all()
    actions = [(r.action, r.subject_id, r.actor) for r in rows]
    assert ("participant.register", created["id"], "dev-admin") in actions
    assert ("participant.lookup", created["id"], "dev-integrator") in actions
    assert ("participant.read", created["id"], "dev-integrator") in actions
    assert next(r for r in rows if r.action == "participant.lookup").purpose == "payment check"
    assert WOMAN_NIK not in str([tuple(r) for r in rows])


async def test_list_filters_and_cursor_pages(registry) -> None:
    await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    await registry.client.post("/v1/participants", json=man(), headers=registry.admin)
    await registry.client.post(
        "/v1/participants",
        json=man(nik="3171010301850002", full_name="Agus", region_code="3171011001", dtsen_decile=1),
        headers=registry.admin,
    )
    first = await registry.client.get("/v1/participants?limit=2", headers=registry.admin)
    assert len(first.json()["items"]) == 2
    assert first.json()["next_cursor"]
    rest = await registry.client.get(
        f"/v1/participants?limit=2&cursor={first.json()['next_cursor']}", headers=registry.admin
    )
    assert len(rest.json()["items"]) == 1
    assert rest.json()["next_cursor"] is None
    ids = {p["id"] for p in first.json()["items"] + rest.json()["items"]}
    assert len(ids) == 3

    async def names(query: str) -> list[str]:
        answer = await registry.client.get(f"/v1/participants?{query}", headers=registry.admin)
        assert answer.status_code == 200, answer.text
        return sorted(p["full_name"] for p in answer.json()["items"])

    assert await names("region_prefix=1371") == ["Budi Santoso", "Siti Rahmawati"]
    assert await names("dtsen_decile=1") == ["Agus", "Siti Rahmawati"]
    assert await names("programme=BPNT") == ["Agus", "Budi Santoso"]
    assert await names("business_field=fashion_menjahit") == ["Siti Rahmawati"]
    assert await names("status=active") == []
    bad = await registry.client.get("/v1/participants?dtsen_decile=11", headers=registry.admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["field"] == "dtsen_decile"


def test_every_route_declares_a_policy() -> None:
    app = FastAPI()
    app.include_router(router)
    assert undeclared_routes(app) == []


# role x reach -> (read, list, write, export): the status of GET one Padang participant, whether the
# list shows them (200 with them / 200 empty / 403), PATCH of them, and the CSV export.
# Only admins hold participants:export (pena/auth.py ROLE_SCOPES): every other role's export is 403.
SEES, EMPTY = "sees", "empty"
TABLE: list[tuple[str, dict[str, Any], tuple[int, object, int, int]]] = [
    ("admin", {}, (200, SEES, 200, 200)),
    ("integrator", {}, (200, SEES, 200, 403)),
    ("integrator", {"unit": "1375"}, (404, EMPTY, 404, 403)),
    ("integrator", {"unit": "abc"}, (403, 403, 403, 403)),
    ("verifier", {"unit": "1371"}, (200, SEES, 403, 403)),
    ("verifier", {"unit": "13.71"}, (200, SEES, 403, 403)),
    ("verifier", {"unit": "1375"}, (404, EMPTY, 403, 403)),
    ("verifier", {"unit": "national"}, (200, SEES, 403, 403)),
    ("approver", {"unit": "13"}, (200, SEES, 403, 403)),
    ("verifier", {}, (403, 403, 403, 403)),
    ("verifier", {"unit": ""}, (403, 403, 403, 403)),
    ("verifier", {"unit": "137"}, (403, 403, 403, 403)),
    ("verifier", {"unit": 1371}, (403, 403, 403, 403)),
    ("verifier", {"unit": ["1371"]}, (403, 403, 403, 403)),
    ("facilitator", {"unit": "1371"}, (200, SEES, 403, 403)),
    ("facilitator", {}, (404, EMPTY, 403, 403)),
    ("facilitator", {"unit": "bad"}, (404, EMPTY, 403, 403)),
    ("centre_operator", {"unit": "bbppks-padang"}, (404, EMPTY, 403, 403)),
    ("centre_operator", {}, (403, 403, 403, 403)),
]


@pytest.mark.parametrize(("role", "claims", "expected"), TABLE, ids=[f"{r}-{c}" for r, c, _ in TABLE])
async def test_role_and_reach_decide_every_route_kind(registry, settings, role, claims, expected) -> None:
    created = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    headers = bearer(settings, role, **claims)
    read = await registry.client.get(f"/v1/participants/{created['id']}", headers=headers)
    listed = await registry.client.get("/v1/participants", headers=headers)
    write = await registry.client.patch(
        f"/v1/participants/{created['id']}",
        json={"household_size": 5, "reason": "new child"},
        headers={**headers, "If-Match": '"1"'},
    )
    export = await registry.client.get("/v1/participants/export.csv", headers=headers)
    if listed.status_code == 200:
        ids = [p["id"] for p in listed.json()["items"]]
        list_outcome: object = SEES if ids == [created["id"]] else EMPTY if ids == [] else ids
    else:
        list_outcome = listed.status_code
    assert (read.status_code, list_outcome, write.status_code, export.status_code) == expected
    if read.status_code == 404:  # out of reach answers exactly like a missing id
        missing = await registry.client.get("/v1/participants/no-such-id", headers=headers)
        assert missing.status_code == 404
        assert read.json()["detail"].replace(created["id"], "X") == missing.json()["detail"].replace("no-such-id", "X")


async def test_a_writer_registers_only_in_its_reach(registry, auth) -> None:
    narrowed = auth("integrator", unit="1375")
    outside = await registry.client.post("/v1/participants", json=woman(), headers=narrowed)
    assert outside.status_code == 403, outside.text
    assert outside.json()["errors"][0] == {
        "field": "region_code",
        "rule": "outside_reach",
        "message": "region_code lies outside the regions your token reaches",
    }
    inside = await registry.client.post("/v1/participants", json=woman(region_code="1375011001"), headers=narrowed)
    assert inside.status_code == 201, inside.text


async def test_a_duplicate_outside_the_reach_is_not_named(registry, auth) -> None:
    first = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    narrowed = auth("integrator", unit="1375")
    again = await registry.client.post("/v1/participants", json=woman(region_code="1375011001"), headers=narrowed)
    assert again.status_code == 409, again.text
    assert "existing_id" not in again.json()
    assert first["id"] not in again.text
    by_admin = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    assert by_admin.json()["existing_id"] == first["id"]
