from __future__ import annotations

from sqlalchemy import select

from pena.tables import audit_log
from tests.participants.support import WOMAN_NIK, man, woman


async def test_facilitator_sees_only_their_unit_and_out_of_scope_is_404(registry, auth) -> None:
    padang = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    bukittinggi = (
        await registry.client.post("/v1/participants", json=man(region_code="1375011001"), headers=registry.admin)
    ).json()
    padang_facilitator = auth("facilitator", unit="1371", sub="fac-padang")
    other_facilitator = auth("facilitator", unit="1375", sub="fac-bkt")

    own = await registry.client.get(f"/v1/participants/{padang['id']}", headers=padang_facilitator)
    assert own.status_code == 200
    assert own.json()["nik"] == "137101********01"
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


async def test_export_masks_nik_without_scope_and_applies_filters(registry, auth) -> None:
    await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    await registry.client.post("/v1/participants", json=man(region_code="1375011001"), headers=registry.admin)
    as_integrator = await registry.client.get(
        "/v1/participants/export.csv?region_prefix=1371", headers=registry.integrator
    )
    assert as_integrator.status_code == 200
    assert as_integrator.headers["content-type"].startswith("text/csv")
    lines = as_integrator.text.strip().splitlines()
    assert len(lines) == 2
    assert "137101********01" in lines[1]
    assert WOMAN_NIK not in as_integrator.text
    as_admin = await registry.client.get("/v1/participants/export.csv", headers=registry.admin)
    assert WOMAN_NIK in as_admin.text
    assert len(as_admin.text.strip().splitlines()) == 3
    as_facilitator = await registry.client.get("/v1/participants/export.csv", headers=auth("facilitator", unit="1375"))
    assert len(as_facilitator.text.strip().splitlines()) == 2
    assert "Budi" in as_facilitator.text
