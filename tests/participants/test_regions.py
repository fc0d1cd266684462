from __future__ import annotations

from services.participants.regions import DEFAULT_REGIONS_CSV, import_regions, read_regions_csv
from tests.participants.support import man


def test_shipped_reference_data_has_38_provinces_and_all_of_sumatera_barat() -> None:
    rows = read_regions_csv(DEFAULT_REGIONS_CSV)
    provinces = {r["code"] for r in rows if r["level"] == "province"}
    assert len(provinces) == 38
    assert {"13", "31", "93", "94", "95", "96"} <= provinces
    sumbar = {r["code"]: r["name"] for r in rows if r["level"] == "regency" and r["code"].startswith("13")}
    assert len(sumbar) == 19
    assert sumbar["1371"] == "Kota Padang"
    assert {r["version"] for r in rows} == {"kemendagri-2022-pena1"}


async def test_import_regions_adds_a_new_version_the_api_uses_at_once(registry, settings, tmp_path) -> None:
    # a regency not in the shipped list: refused until the reference data knows it
    body = man(region_code="1207011001")
    assert (await registry.client.post("/v1/participants", json=body, headers=registry.admin)).status_code == 422
    newer = tmp_path / "regions.csv"
    newer.write_text("version,code,name,level\ntest-v2,1207,Kabupaten Deli Serdang,regency\n", encoding="utf-8")
    assert await import_regions(settings, newer) == 1
    assert (await registry.client.post("/v1/participants", json=body, headers=registry.admin)).status_code == 201
    listed = await registry.client.get("/v1/participants/regions?prefix=12", headers=registry.admin)
    assert {(r["code"], r["version"]) for r in listed.json()} == {
        ("12", "kemendagri-2022-pena1"),
        ("1207", "test-v2"),
        ("1271", "kemendagri-2022-pena1"),
    }
