"""NIK and KK number rules (services/participants/identity.py), no database.

NIK = province (2) + regency (2) + district (2) + birth date DDMMYY, DD + 40 for women + serial (4, from 0001).
KK = region (6) + registration date DDMMYY (the latest such date not in the future) + family serial (4)."""

from __future__ import annotations

from datetime import date

from services.participants.identity import kk_errors, nik_errors

KNOWN = frozenset({"13", "1371", "31"})
TODAY = date(2026, 1, 5)


def nik_rules(nik: str, *, birth_date: date | None = None, sex: str | None = None) -> set[str]:
    return {e["rule"] for e in nik_errors(nik, birth_date=birth_date, sex=sex, known=KNOWN)}


def kk_rules(kk: str, *, today: date = TODAY) -> set[str]:
    return {e["rule"] for e in kk_errors(kk, today=today, known=KNOWN)}


# NIK


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


def test_a_womans_day_is_counted_from_forty() -> None:
    # woman born 12 May 1990: day 12 + 40 = 52
    assert nik_rules("1371015205900001", birth_date=date(1990, 5, 12), sex="F") == set()
    assert nik_rules("1371015205900001", birth_date=date(1990, 5, 12), sex="M") == {"nik_sex_mismatch"}
    # the same date without the 40 reads as a man born on the 12th
    assert nik_rules("1371011205900001", birth_date=date(1990, 5, 12), sex="F") == {"nik_sex_mismatch"}
    # day 71 = 31 + 40: 31 May is real; day 72 = 32 + 40 is no day of any month
    assert nik_rules("1371017105900001", birth_date=date(1990, 5, 31), sex="F") == set()
    assert nik_rules("1371017205900001") == {"nik_invalid_birth_date"}


def test_day_and_month_bounds_of_the_birth_date() -> None:
    assert nik_rules("1371010001900001") == {"nik_invalid_birth_date"}  # day 00
    assert nik_rules("1371013101900001") == set()  # 31 January
    assert nik_rules("1371013104900001") == {"nik_invalid_birth_date"}  # 31 April
    assert nik_rules("1371010113900001") == {"nik_invalid_birth_date"}  # month 13
    assert nik_rules("1371014001900001") == {"nik_invalid_birth_date"}  # day 40: past 31 (man), short of 41 (woman)


def test_the_stated_birth_date_must_match_the_digits() -> None:
    # digits 030185: 3 January (19)85
    assert nik_rules("1371010301850002", birth_date=date(1985, 1, 4), sex="M") == {"nik_birth_date_mismatch"}
    assert nik_rules("1371010301850002", birth_date=date(1986, 1, 3), sex="M") == {"nik_birth_date_mismatch"}
    assert nik_rules("1371010301850002", birth_date=date(1985, 1, 3), sex="M") == set()


def test_region_and_serial_parts() -> None:
    assert nik_rules("3171010301850002") == set()  # DKI Jakarta (31) is known
    assert nik_rules("3271010301850002") == {"nik_unknown_province"}  # Jawa Barat (32) is not in KNOWN
    assert nik_rules("1300010301850002") == {"nik_implausible_region"}  # regency 00
    assert nik_rules("1371000301850002") == {"nik_implausible_region"}  # district 00
    assert nik_rules("1371010301850000") == {"nik_serial"}  # serials start at 0001
    assert nik_rules("1371010301850001") == set()


def test_only_sixteen_digits_are_a_nik_and_the_message_never_repeats_it() -> None:
    for bad in ("137101030185000", "13710103018500021", "137101030185000A", "1371 10301850002", ""):
        assert nik_rules(bad) == {"nik_format"}, bad
    for error in nik_errors("9900000301850000", birth_date=date(1990, 1, 1), sex="F", known=KNOWN):
        assert error["field"] == "nik"
        assert "9900000301850000" not in error["message"]


# KK


def test_kk_registration_date_may_not_lie_in_the_future() -> None:
    today = date(2026, 1, 5)
    assert kk_errors("1371012001150003", today=today, known=KNOWN) == []
    # 20 January 2026 is in the future, 1926 is the latest past reading: accepted as plausible
    assert kk_errors("1371012001260003", today=today, known=KNOWN) == []
    assert {e["rule"] for e in kk_errors("1371013102150003", today=today, known=KNOWN)} == {
        "kk_invalid_registration_date"
    }


def test_kk_registered_today_is_not_in_the_future() -> None:
    assert kk_rules("1371010501260003") == set()  # 5 January 2026 = TODAY
    assert kk_rules("1371010601260003") == set()  # 6 January 2026 is tomorrow: read as 6 January 1926


def test_kk_leap_days_are_read_in_the_latest_century_that_has_them() -> None:
    assert kk_rules("1371012902240003") == set()  # 29 February 2024
    assert kk_rules("1371012902960003") == set()  # 2096 is in the future: 29 February 1996
    assert kk_rules("1371012902250003") == {"kk_invalid_registration_date"}  # neither 2025 nor 1925 is leap
    # 29 February 2000 exists, 1900 was no leap year: the day before it the digits are no past date at all
    assert kk_rules("1371012902000003", today=date(2000, 2, 28)) == {"kk_invalid_registration_date"}
    assert kk_rules("1371012902000003", today=date(2000, 2, 29)) == set()


def test_kk_day_and_month_bounds() -> None:
    assert kk_rules("1371010001150003") == {"kk_invalid_registration_date"}  # day 00
    assert kk_rules("1371010013150003") == {"kk_invalid_registration_date"}  # month 13
    assert kk_rules("1371013104150003") == {"kk_invalid_registration_date"}  # 31 April
    # a KK has no +40 for women: day 52 is no date
    assert kk_rules("1371015205150003") == {"kk_invalid_registration_date"}


def test_kk_region_part() -> None:
    assert kk_rules("9971012001150003") == {"kk_number_unknown_province"}
    assert kk_rules("1300012001150003") == {"kk_number_implausible_region"}  # regency 00
    assert kk_rules("1371002001150003") == {"kk_number_implausible_region"}  # district 00
    assert kk_rules("9900002001150003") == {"kk_number_unknown_province", "kk_number_implausible_region"}


def test_only_sixteen_digits_are_a_kk_number_and_the_message_never_repeats_it() -> None:
    for bad in ("137101200115000", "13710120011500031", "13710120011500O3", ""):
        assert kk_rules(bad) == {"kk_format"}, bad
    for error in kk_errors("9900003102150003", today=TODAY, known=KNOWN):
        assert error["field"] == "kk_number"
        assert "9900003102150003" not in error["message"]
