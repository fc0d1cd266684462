"""The business field on registration, update, CSV import and the list filter: the kernel taxonomy's one
rule (fields and sub-fields accepted, anything else 422 `unknown_business_field`), the same rule monev's
survey and training's batches apply."""

from __future__ import annotations

import csv
import io

from tests.participants.support import MAN_NIK, WOMAN_NIK, woman
from tests.support import outbox_events


async def test_a_sub_field_is_accepted_and_an_unknown_field_refused_naming_the_rule(registry) -> None:
    refused = await registry.client.post(
        "/v1/participants", json=woman(business_field="astrologi"), headers=registry.admin
    )
    assert refused.status_code == 422
    assert [(e["field"], e["rule"]) for e in refused.json()["errors"]] == [("business_field", "unknown_business_field")]

    created = await registry.client.post(
        "/v1/participants", json=woman(business_field="makanan_berat"), headers=registry.admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["business_field"] == "makanan_berat"
    [event] = await outbox_events(registry.runtime, "participants", "participant.registered")
    assert event["data"]["business_field"] == "makanan_berat"

    url = f"/v1/participants/{created.json()['id']}"
    headers = {**registry.admin, "If-Match": '"1"'}
    bad_update = await registry.client.patch(url, json={"business_field": "x", "reason": "typo"}, headers=headers)
    assert bad_update.status_code == 422
    assert bad_update.json()["errors"][0]["rule"] == "unknown_business_field"
    updated = await registry.client.patch(
        url, json={"business_field": "konveksi", "reason": "moved on"}, headers=headers
    )
    assert updated.status_code == 200, updated.text
    assert updated.json()["business_field"] == "konveksi"

    listed = await registry.client.get(
        "/v1/participants", params={"business_field": "konveksi"}, headers=registry.admin
    )
    assert [p["id"] for p in listed.json()["items"]] == [created.json()["id"]]
    bad_filter = await registry.client.get("/v1/participants", params={"business_field": "y"}, headers=registry.admin)
    assert bad_filter.status_code == 422
    assert bad_filter.json()["errors"][0]["rule"] == "unknown_business_field"


async def test_the_import_refuses_an_unknown_business_field_row_by_row(registry) -> None:
    header = (
        "nik,kk_number,full_name,birth_date,sex,region_code,business_field,"
        "consent_purpose,consent_given_on,consent_recorded_by\n"
    )
    consent = ",PENA programme participation,2026-10-01,fac-1"
    rows = [
        f"{WOMAN_NIK},1371012001150003,Siti Rahmawati,1990-05-12,F,1371011001,makanan_berat{consent}",
        f"{MAN_NIK},1371012001150003,Budi Santoso,1985-01-03,M,1371011001,astrologi{consent}",
    ]
    content = (header + "\n".join(rows) + "\n").encode()
    started = await registry.client.post(
        "/v1/participants/imports", files={"file": ("kpm.csv", content, "text/csv")}, headers=registry.admin
    )
    assert started.status_code == 202, started.text
    scheduler = registry.runtime.service("participants").scheduler
    assert scheduler is not None
    await scheduler.drain()
    job = (await registry.client.get(f"/v1/participants/imports/{started.json()['id']}", headers=registry.admin)).json()
    assert (job["created_rows"], job["error_rows"]) == (1, 1)
    errors = await registry.client.get(f"/v1/participants/imports/{job['id']}/errors", headers=registry.admin)
    found = {(int(r["row"]), r["field"], r["rule"]) for r in csv.DictReader(io.StringIO(errors.text))}
    assert found == {(2, "business_field", "unknown_business_field")}
