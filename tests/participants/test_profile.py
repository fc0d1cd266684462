"""Address, phone, business description, potential notes and the consent record."""

from __future__ import annotations

from sqlalchemy import select

from services.participants.models import Participant
from tests.participants.support import woman


async def test_profile_fields_are_kept_encrypted_and_consent_is_recorded(registry) -> None:
    body = woman(
        phone="+62 812 3456 7890",
        business_description="jahit seragam sekolah",
        potential_notes="pandai menjahit, ingin membuka kios",
    )
    created = await registry.client.post("/v1/participants", json=body, headers=registry.admin)
    assert created.status_code == 201, created.text
    read = (await registry.client.get(f"/v1/participants/{created.json()['id']}", headers=registry.admin)).json()
    assert read["address"] == body["address"]
    assert read["phone"] == body["phone"]
    assert read["business_description"] == "jahit seragam sekolah"
    assert read["consent"] == body["consent"]
    async with registry.runtime.service("participants").db.transaction() as s:
        row = (await s.execute(select(Participant))).scalars().one()
    assert row.profile_enc
    assert "Padang" not in row.profile_enc
    assert "812" not in row.profile_enc
    assert row.consent_purpose == body["consent"]["purpose"]


async def test_registration_without_consent_or_with_a_bad_phone_is_refused(registry) -> None:
    no_consent = woman()
    del no_consent["consent"]
    r = await registry.client.post("/v1/participants", json=no_consent, headers=registry.admin)
    assert r.status_code == 422
    assert {(e["field"], e["rule"]) for e in r.json()["errors"]} == {("consent", "missing")}
    r = await registry.client.post("/v1/participants", json=woman(phone="call me"), headers=registry.admin)
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "phone"


async def test_erasure_blanks_the_profile_and_keeps_the_consent_record(registry) -> None:
    created = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
    r = await registry.client.post(
        f"/v1/participants/{created['id']}/erasure", json={"reason": "family asked"}, headers=registry.admin
    )
    assert r.status_code == 200, r.text
    read = (await registry.client.get(f"/v1/participants/{created['id']}", headers=registry.admin)).json()
    assert read["address"] is None
    assert read["consent"]["purpose"]


async def test_region_code_may_be_written_with_dots(registry) -> None:
    created = await registry.client.post(
        "/v1/participants", json=woman(region_code="13.71.01.1001"), headers=registry.admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["region_code"] == "1371011001"
