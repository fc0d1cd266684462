from __future__ import annotations

from datetime import date

from services.participants.identity import kk_errors, nik_errors
from services.participants.regions import DEFAULT_REGIONS_CSV, import_regions, read_regions_csv
from tests.participants.support import man

KNOWN = frozenset({"13", "1371", "31"})


def test_shipped_reference_data_has_38_provinces_and_all_of_sumatera_barat() -> None:
    rows = read_regions_csv(DEFAULT_REGIONS_CSV)
    provinces = {r["code"] for r in rows if r["level"] == "province"}
    assert len(provinces) == 38 and {"13", "31", "93", "94", "95", "96"} <= provinces
    sumbar = {r["code"]: r["name"] for r in rows if r["level"] == "regency" and r["code"].startswith("13")}
    assert len(sumbar) == 19 and sumbar["1371"] == "Kota Padang"
    assert {r["version"] for r in rows} == {"kemendagri-2022-pena1"}


def test_nik_rules_resolve_the_century_and_leap_days() -> None:
    # born 29 February 2000 (a leap year); NIK digits 290200
    assert nik_errors("1371012902000001", birth_date=date(2000, 2, 29), sex="M", known=KNOWN) == []
    # 29 February of a year that is no leap year in either century
    rules = {e["rule"] for e in nik_errors("1371012902010001", birth_date=None, sex=None, known=KNOWN)}
    assert rules == {"nik_invalid_birth_date"}
    # same DDMMYY, other century: the NIK cannot tell, so it agrees
    assert nik_errors("1371010301850002", birth_date=date(1885, 1, 3), sex="M", known=KNOWN) == []
    rules = {e["rule"] for e in nik_errors("9900000301850000", birth_date=None, sex=None, known=KNOWN)}
    assert rules == {"nik_unknown_province", "nik_implausible_region", "nik_serial"}
    assert {e["rule"] for e in nik_errors("13710103018500", birth_date=None, sex=None, known=KNOWN)} == {"nik_format"}


def test_kk_registration_date_may_not_lie_in_the_future() -> None:
    today = date(2026, 1, 5)
    assert kk_errors("1371012001150003", today=today, known=KNOWN) == []
    # 20 January 2026 is in the future, 1926 is the latest past reading: accepted as plausible
    assert kk_errors("1371012001260003", today=today, known=KNOWN) == []
    assert {e["rule"] for e in kk_errors("1371013102150003", today=today, known=KNOWN)} == {
        "kk_invalid_registration_date"
    }


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
