"""NIK and KK number rules (pure functions: no database, no clock of their own).

NIK = province (2) + regency (2) + district (2) + birth date DDMMYY (DD + 40 for women) + serial (4,
from 0001). No check digit; the century is resolved with the stated birth date.
KK = region (6) + registration date DDMMYY + family serial (4). Messages never repeat the number."""

from __future__ import annotations

import unicodedata
from datetime import date
from typing import Any

from pena.crypto import keyed_hex
from services.participants.regions import province_known

Error = dict[str, Any]


def _error(field: str, rule: str, message: str) -> Error:
    return {"field": field, "rule": rule, "message": message}


def _region_part_errors(field: str, number: str, known: frozenset[str]) -> list[Error]:
    errors = []
    if not province_known(number, known):
        errors.append(_error(field, f"{field}_unknown_province", "the first two digits are not a known province code"))
    if number[2:4] == "00" or number[4:6] == "00":
        errors.append(_error(field, f"{field}_implausible_region", "regency and district digits cannot be 00"))
    return errors


def nik_errors(nik: str, *, birth_date: date | None, sex: str | None, known: frozenset[str]) -> list[Error]:
    if len(nik) != 16 or not nik.isdigit():
        return [_error("nik", "nik_format", "NIK must be exactly 16 digits")]
    errors = _region_part_errors("nik", nik, known)
    day, month, yy = int(nik[6:8]), int(nik[8:10]), int(nik[10:12])
    female = day > 40
    real_day = day - 40 if female else day
    if nik[12:16] == "0000":
        errors.append(_error("nik", "nik_serial", "the last four digits (serial) start at 0001"))
    if not _is_real_day_month(real_day, month, yy):
        errors.append(
            _error("nik", "nik_invalid_birth_date", "digits 7-12 are not a real birth date (DDMMYY, DD+40 for women)")
        )
        return errors
    if birth_date is not None and (real_day, month, yy) != (birth_date.day, birth_date.month, birth_date.year % 100):
        errors.append(_error("nik", "nik_birth_date_mismatch", "the NIK's birth date does not match birth_date"))
    if sex is not None and ("F" if female else "M") != sex:
        errors.append(_error("nik", "nik_sex_mismatch", "the NIK's day (+40 for women) does not match sex"))
    return errors


def kk_errors(kk: str, *, today: date, known: frozenset[str]) -> list[Error]:
    if len(kk) != 16 or not kk.isdigit():
        return [_error("kk_number", "kk_format", "KK number must be exactly 16 digits")]
    errors = _region_part_errors("kk_number", kk, known)
    day, month, yy = int(kk[6:8]), int(kk[8:10]), int(kk[10:12])
    registered = _resolve_century(day, month, yy, today)
    if registered is None:
        errors.append(_error("kk_number", "kk_invalid_registration_date", "digits 7-12 are not a real date (DDMMYY)"))
    return errors


def _is_real_day_month(day: int, month: int, yy: int) -> bool:
    # any century will do for a real-date check except 29 February: a leap year exists in both
    for century in (1900, 2000):
        try:
            date(century + yy, month, day)
            return True
        except ValueError:
            continue
    return False


def _resolve_century(day: int, month: int, yy: int, today: date) -> date | None:
    """The latest date with these digits that is not in the future."""
    for century in (2000, 1900):
        try:
            candidate = date(century + yy, month, day)
        except ValueError:
            continue
        if candidate <= today:
            return candidate
    return None


def normalised_name(name: str) -> str:
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().casefold()
    return " ".join("".join(ch if ch.isalnum() else " " for ch in folded).split())


def identity_hash(name: str, birth_date: date, key: str) -> str:
    """Keyed hash of name + birth date: finds possible duplicates without a readable index."""
    message = f"identity|{normalised_name(name)}|{birth_date.isoformat()}".encode()
    return keyed_hex(key, message)


def kk_token(kk: str, key: str) -> str:
    return keyed_hex(key, f"kk|{kk}".encode())
