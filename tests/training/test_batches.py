"""Centres, batches, lifecycle, validation, lists and unit scoping, on a real PostgreSQL."""

from __future__ import annotations

from datetime import date

from tests.support import outbox_events, register
from tests.training.support import batch_body, create_centre, open_batch, set_status


async def test_operator_of_another_centre_gets_404_and_sees_none_of_its_batches(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-1")
    async with api(runtime) as client:
        padang = await create_centre(client, admin, code="BBPPKS-PADANG")
        other = await create_centre(client, admin, code="BBPPKS-BANDUNG")
        own_operator = auth("centre_operator", unit=padang, sub="op-1")
        stranger = auth("centre_operator", unit=other, sub="op-2")
        batch = await open_batch(client, own_operator, padang)
        bid = batch["id"]

        assert (await client.get(f"/v1/batches/{bid}", headers=own_operator)).status_code == 200
        assert (await client.get(f"/v1/batches/{bid}", headers=stranger)).status_code == 404
        assert (await client.get(f"/v1/batches/{bid}/roster", headers=stranger)).status_code == 404
        enrol = await client.post(
            f"/v1/batches/{bid}/enrolments", json={"participant_id": "p-1", "exit_agreement": True}, headers=stranger
        )
        assert enrol.status_code == 404
        assert (await set_status(client, stranger, bid, "running")).status_code == 404
        listed = await client.get("/v1/batches", params={"centre_id": padang}, headers=stranger)
        assert listed.status_code == 200
        assert listed.json()["items"] == []
        foreign_create = await client.post("/v1/batches", json=batch_body(padang), headers=stranger)
        assert foreign_create.status_code == 404
        centre_create = await client.post(
            "/v1/training-centres", json={"name": "X", "code": "X1", "region_code": "13"}, headers=own_operator
        )
        assert centre_create.status_code == 403
        own_centres = await client.get("/v1/training-centres", headers=own_operator)
        assert [c["id"] for c in own_centres.json()["items"]] == [padang]
        assert (await client.get(f"/v1/training-centres/{other}", headers=own_operator)).status_code == 404


async def test_lifecycle_refuses_invalid_transitions(runtime, api, auth) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        centre = await create_centre(client, admin)
        created = await client.post("/v1/batches", json=batch_body(centre), headers=admin)
        bid = created.json()["id"]
        assert created.json()["status"] == "planned"
        skip = await set_status(client, admin, bid, "running")
        assert skip.status_code == 409
        assert skip.json()["type"].endswith("/invalid_transition")
        assert skip.json()["from_status"] == "planned"
        assert (await set_status(client, admin, bid, "open")).status_code == 200
        assert (await set_status(client, admin, bid, "running")).status_code == 200
        direct = await set_status(client, admin, bid, "completed")
        assert direct.status_code == 409
        assert direct.json()["type"].endswith("/use_close")
        close_empty = await client.post(f"/v1/batches/{bid}/close", headers=admin)
    assert close_empty.status_code == 200  # no enrolments: closes with no outcomes
    assert close_empty.json()["outcomes"] == []
    [scheduled] = await outbox_events(runtime, "training", "training.batch_scheduled")
    assert scheduled["subject"] == bid
    assert scheduled["data"]["business_field"] == "fashion_menjahit"


async def test_validation_names_the_field_and_the_rule(runtime, api, auth) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        centre = await create_centre(client, admin)
        outside = batch_body(centre)
        outside["sessions"][1]["date"] = "2030-01-01"
        unknown_field = {**batch_body(centre), "approved": True}
        bad_field = batch_body(centre, business_field="astrologi")
        bad_region = batch_body(centre, region_code="13.71")
        answers = [
            await client.post("/v1/batches", json=body, headers=admin)
            for body in (outside, unknown_field, bad_field, bad_region)
        ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422]
    errors = [a.json()["errors"][0] for a in answers]
    assert (errors[0]["field"], errors[0]["rule"]) == ("sessions.1.date", "within_batch_dates")
    assert (errors[1]["field"], errors[1]["rule"]) == ("approved", "extra_forbidden")
    assert (errors[2]["field"], errors[2]["rule"]) == ("business_field", "unknown_business_field")
    assert (errors[3]["field"], errors[3]["rule"]) == ("region_code", "string_pattern_mismatch")


async def test_batch_list_filters_and_pages_with_a_cursor(runtime, api, auth) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        centre = await create_centre(client, admin)
        for month in (3, 5, 7, 9):
            body = batch_body(centre, start=date(2025, month, 1))
            if month == 9:
                body["business_field"] = "makanan_berat"
            assert (await client.post("/v1/batches", json=body, headers=admin)).status_code == 201
        first = await client.get("/v1/batches", params={"limit": 2, "start_from": "2025-04-01"}, headers=admin)
        second = await client.get(
            "/v1/batches",
            params={"limit": 2, "start_from": "2025-04-01", "cursor": first.json()["next_cursor"]},
            headers=admin,
        )
        culinary = await client.get(
            "/v1/batches", params={"business_field": "makanan_berat", "region_prefix": "1371"}, headers=admin
        )
        centres = await client.get("/v1/training-centres", params={"region_prefix": "13"}, headers=admin)
    assert [b["start_date"] for b in first.json()["items"]] == ["2025-05-01", "2025-07-01"]
    assert [b["start_date"] for b in second.json()["items"]] == ["2025-09-01"]
    assert second.json()["next_cursor"] is None
    assert [b["business_field"] for b in culinary.json()["items"]] == ["makanan_berat"]
    assert [c["name"] for c in centres.json()["items"]] == ["BBPPKS Padang"]


async def test_centre_creation_is_idempotent_and_codes_are_unique(runtime, api, auth) -> None:
    admin = {**auth("admin"), "Idempotency-Key": "centre-1"}
    body = {"name": "BBPPKS Padang", "code": "BBPPKS-PADANG", "region_code": "1371"}
    async with api(runtime) as client:
        first = await client.post("/v1/training-centres", json=body, headers=admin)
        retry = await client.post("/v1/training-centres", json=body, headers=admin)
        other_body = await client.post("/v1/training-centres", json={**body, "name": "Other"}, headers=admin)
        duplicate = await client.post("/v1/training-centres", json=body, headers=auth("admin"))
        bad_status = await client.get("/v1/batches", params={"status": "finished"}, headers=auth("admin"))
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert other_body.status_code == 422
    assert other_body.json()["type"].endswith("/idempotency-key-reuse")
    assert duplicate.status_code == 409
    assert duplicate.json()["existing_id"] == first.json()["id"]
    assert bad_status.status_code == 422
    assert bad_status.json()["errors"][0]["field"] == "status"


async def test_dotted_region_codes_are_stored_plain_and_found_by_plain_prefix(runtime, api, auth) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        papua = await create_centre(client, admin, "BALAI-JAYAPURA", region_code="91.71")
        padang = await create_centre(client, admin, region_code="1371")
        centre = await client.get(f"/v1/training-centres/{papua}", headers=admin)
        assert centre.json()["region_code"] == "9171"
        found = await client.get("/v1/training-centres", params={"region_prefix": "9171"}, headers=admin)
        assert [c["id"] for c in found.json()["items"]] == [papua]
        found = await client.get("/v1/training-centres", params={"region_prefix": "91"}, headers=admin)
        assert [c["id"] for c in found.json()["items"]] == [papua]
        dotted = await client.get("/v1/training-centres", params={"region_prefix": "91.71"}, headers=admin)
        assert [c["id"] for c in dotted.json()["items"]] == [papua]
        bad_filter = await client.get("/v1/training-centres", params={"region_prefix": "9x"}, headers=admin)
        assert bad_filter.status_code == 422
        batch = await client.post("/v1/batches", json=batch_body(papua, region_code="91.71.01.1001"), headers=admin)
        assert batch.status_code == 201, batch.text
        assert batch.json()["region_code"] == "9171011001"
        listed = await client.get("/v1/batches", params={"region_prefix": "917101"}, headers=admin)
        assert [b["id"] for b in listed.json()["items"]] == [batch.json()["id"]]
        assert padang not in [c["id"] for c in found.json()["items"]]
        for bad in ("91.7", "9.171", "91.71.01.100", "91-71"):
            refused = await client.post(
                "/v1/training-centres", json={"name": "X", "code": "X2", "region_code": bad}, headers=admin
            )
            assert refused.status_code == 422, bad
            assert "region_code" in refused.text
