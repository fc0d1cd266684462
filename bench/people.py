"""Valid participant rows for the participants benchmarks, following services/participants rules:
NIK = region (6) + birth date DDMMYY (DD + 40 for women) + serial 0001..; KK = region (6) +
registration date DDMMYY + serial; region_code = a known regency (from the shipped regions.csv)
+ 6 digits. Names are unique so no row is flagged as a possible duplicate."""

from __future__ import annotations

import csv
import io
from datetime import date, timedelta
from typing import Any

from services.participants.regions import DEFAULT_REGIONS_CSV, read_regions_csv

FIELDS = ("nik", "kk_number", "full_name", "birth_date", "sex", "region_code", "business_field")
CONSENT = {"purpose": "PENA", "given_on": "2026-01-05", "recorded_by": "bench"}
# compact rows (~94 bytes): they fitted the former 10 MiB import cap, and keep the import figures comparable
CSV_FIELDS = ("nik", "kk_number", "full_name", "birth_date", "sex", "region_code")
BUSINESS_FIELDS = ("kuliner", "agribisnis", "dagang", "fashion_menjahit", "jasa", "otomotif", "kerajinan_tangan")


def regencies() -> list[str]:
    """The known regency codes (4 digits) of the shipped region data."""
    return sorted(r["code"] for r in read_regions_csv(DEFAULT_REGIONS_CSV) if len(r["code"]) == 4)


def participants(count: int, *, start: int = 0, within: list[str] | None = None) -> list[dict[str, Any]]:
    """`count` distinct valid participants; `start` offsets the sequence so two calls do not collide;
    `within`: the regency codes they live in (default every known regency, in turn)."""
    known = within or regencies()
    rows = []
    for i in range(start, start + count):
        regency = known[i % len(known)]
        district = f"{i // len(known) % 40 + 1:02d}"
        # a serial per (region, birth date): 9,000 people share a birth date before it moves on
        birth = date(1975, 1, 1) + timedelta(days=(i // 9000) * 37 % 12000)
        sex = "F" if i % 2 else "M"
        day = birth.day + 40 if sex == "F" else birth.day
        serial = i % 9000 + 1
        nik = f"{regency}{district}{day:02d}{birth:%m%y}{serial:04d}"
        # one family card per person (the registry allows one active member per KPM): the card's issue
        # date moves with every 9,000 people, so numbers repeat only after 3,024,000 people
        issued = f"{i // 9000 % 28 + 1:02d}{i // (9000 * 28) % 12 + 1:02d}10"
        kk = f"{regency}{district}{issued}{serial:04d}"
        rows.append(
            {
                "nik": nik,
                "kk_number": kk,
                "full_name": f"Peserta {i}",
                "birth_date": birth.isoformat(),
                "sex": sex,
                "region_code": f"{regency}{district}{i % 9000 + 1:04d}",
                "business_field": BUSINESS_FIELDS[i % len(BUSINESS_FIELDS)],
                "consent": CONSENT,  # UU PDP: registration requires the recorded consent
            }
        )
    return rows


def to_csv(rows: list[dict[str, Any]]) -> bytes:
    """The import API's CSV form: the required fields, consent flattened into consent_* columns."""
    out = io.StringIO()
    columns = [*CSV_FIELDS, *(f"consent_{k}" for k in CONSENT)]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        flat = {k: row[k] for k in CSV_FIELDS} | {f"consent_{k}": v for k, v in row["consent"].items()}
        writer.writerow(flat)
    return out.getvalue().encode()
