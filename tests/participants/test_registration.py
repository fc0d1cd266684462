from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from pena.tables import idempotency_keys
from services.participants.models import Participant
from tests.participants.support import MAN_NIK, WOMAN_NIK, man, woman


def _rules(response) -> set[tuple[str, str]]:
    return {(e["field"], e["rule"]) for e in response.json()["errors"]}


async def test_womans_nik_with_day_plus_40_is_accepted(registry) -> None:
    created = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["nik"] == WOMAN_NIK  # admin holds participants:read_nik
    assert body["sex"] == "F"
    assert body["birth_year"] == 1990
    assert body["status"] == "candidate"
    assert created.headers["ETag"] == '"1"'
    seen = await registry.client.get(f"/v1/participants/{body['id']}", headers=registry.integrator)
    assert seen.json()["nik"] == "1371**********01"  # integrators get the masked NIK
    assert seen.json()["kk_number"] == "1371**********03"


async def test_nik_date_contradicting_birth_date_is_refused(registry) -> None:
    refused = await registry.client.post(
        "/v1/participants", json=woman(birth_date="1990-05-13"), headers=registry.admin
    )
    assert refused.status_code == 422
    assert ("nik", "nik_birth_date_mismatch") in _rules(refused)
    assert WOMAN_NIK not in refused.text


async def test_nik_sex_and_impossible_dates_are_refused(registry) -> None:
    wrong_sex = await registry.client.post("/v1/participants", json=woman(sex="M"), headers=registry.admin)
    assert ("nik", "nik_sex_mismatch") in _rules(wrong_sex)
    impossible = await registry.client.post(
        "/v1/participants", json=man(nik="1371013102850002", birth_date="1985-02-28"), headers=registry.admin
    )
    assert ("nik", "nik_invalid_birth_date") in _rules(impossible)
    bad_kk = await registry.client.post(
        "/v1/participants", json=man(kk_number="9971013213150003"), headers=registry.admin
    )
    assert {("kk_number", "kk_number_unknown_province"), ("kk_number", "kk_invalid_registration_date")} <= _rules(
        bad_kk
    )


async def test_unknown_region_names_region_code(registry) -> None:
    refused = await registry.client.post("/v1/participants", json=man(region_code="1399011001"), headers=registry.admin)
    assert refused.status_code == 422
    assert _rules(refused) == {("region_code", "unknown_region")}
    village_of_known_regency = await registry.client.post(
        "/v1/participants", json=man(region_code="1375031234"), headers=registry.admin
    )
    assert village_of_known_regency.status_code == 201, village_of_known_regency.text


async def test_unknown_field_is_refused(registry) -> None:
    refused = await registry.client.post("/v1/participants", json=woman(is_admin=True), headers=registry.admin)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert ("is_admin", "extra_forbidden") in _rules(refused)


async def test_duplicate_nik_is_409_with_existing_id(registry) -> None:
    first = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    again = await registry.client.post("/v1/participants", json=woman(full_name="Siti R."), headers=registry.admin)
    assert again.status_code == 409
    assert again.json()["existing_id"] == first.json()["id"]


async def test_concurrent_registration_of_one_nik_leaves_one_record(registry) -> None:
    answers = await asyncio.gather(
        registry.client.post("/v1/participants", json=man(), headers=registry.admin),
        registry.client.post("/v1/participants", json=man(), headers=registry.integrator),
    )
    assert sorted(a.status_code for a in answers) == [201, 409]
    winner = next(a for a in answers if a.status_code == 201).json()["id"]
    assert next(a for a in answers if a.status_code == 409).json()["existing_id"] == winner
    async with registry.runtime.service("participants").db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Participant))).scalar_one() == 1


async def test_idempotency_key_returns_the_first_answer(registry) -> None:
    headers = {**registry.admin, "Idempotency-Key": "reg-1"}
    first = await registry.client.post("/v1/participants", json=man(), headers=headers)
    again = await registry.client.post("/v1/participants", json=man(), headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert again.json()["nik"] == MAN_NIK
    other_body = await registry.client.post("/v1/participants", json=woman(), headers=headers)
    assert other_body.status_code == 422
    async with registry.runtime.service("participants").db.transaction() as session:
        stored = (await session.execute(select(idempotency_keys))).all()
    assert len(stored) == 1
    assert MAN_NIK not in str([tuple(r) for r in stored])


async def test_identity_is_stored_encrypted(registry) -> None:
    created = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    async with registry.runtime.service("participants").db.transaction() as session:
        row = (await session.execute(select(Participant).where(Participant.id == created.json()["id"]))).scalar_one()
    stored = " ".join(str(v) for v in row.model_dump().values())
    assert WOMAN_NIK not in stored
    assert "Siti" not in stored
    assert "900000" not in stored
    assert row.nik_token
    assert len(row.nik_token) == 64


async def test_possible_duplicate_is_flagged_for_admins_not_merged(registry) -> None:
    first = await registry.client.post("/v1/participants", json=man(), headers=registry.admin)
    # same name and birth date, another NIK (another serial): flagged, both kept
    second = await registry.client.post(
        "/v1/participants", json=man(nik="1371010301850007", full_name="BUDI  santoso"), headers=registry.admin
    )
    assert second.status_code == 201
    assert second.json()["possible_duplicate_of"] == first.json()["id"]
    assert second.json()["flagged"] is True
    review = await registry.client.get("/v1/participants?flagged=true", headers=registry.admin)
    assert [p["id"] for p in review.json()["items"]] == [second.json()["id"]]
    assert (await registry.client.get("/v1/participants?flagged=true", headers=registry.integrator)).status_code == 403
    seen_by_integrator = await registry.client.get(
        f"/v1/participants/{second.json()['id']}", headers=registry.integrator
    )
    assert seen_by_integrator.json()["possible_duplicate_of"] is None
    assert MAN_NIK not in seen_by_integrator.text
