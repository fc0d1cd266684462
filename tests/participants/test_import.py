from __future__ import annotations

import csv
import io

from sqlalchemy import func, select

from services.participants.models import Participant
from tests.participants.support import MAN_NIK, WOMAN_NIK

HEADER = (
    "nik,kk_number,full_name,birth_date,sex,region_code,business_field,assistance_programmes,dtsen_decile,"
    "consent_purpose,consent_given_on,consent_recorded_by\n"
)
CONSENT = ",PENA programme participation,2026-10-01,fac-1"
ROWS = [
    f"{WOMAN_NIK},1371012001150003,Siti Rahmawati,1990-05-12,F,1371011001,fashion_menjahit,PKH,1",
    f"{MAN_NIK},1371012001150003,Budi Santoso,1985-01-03,M,1371011001,kuliner,PKH;BPNT,2",
    # row 3: NIK says 13 May, birth date says 12 May
    "1371015305900004,1371012001150003,Ani,1990-05-12,F,1371011001,kuliner,PKH,1",
    # row 4: unknown regency and a decile out of range
    "1371010301850009,1371012001150003,Joko,1985-01-03,M,1399011001,jasa,,11",
    # row 5: the same NIK again within the file
    f"{MAN_NIK},1371012001150003,Budi Santoso,1985-01-03,M,1371011001,kuliner,PKH,2",
    # row 6: a malformed date
    "3171010301850002,3171012001150003,Agus,03-01-1985,M,3171011001,dagang,BPNT,3",
]
ROWS = [row + CONSENT for row in ROWS] + [
    # row 7: no consent recorded
    "1371014101920003,1371012001150003,Rina,1992-01-01,F,1371011001,kuliner,PKH,1,,,",
]
CSV = (HEADER + "\n".join(ROWS) + "\n").encode()


async def _import(registry, content: bytes) -> dict:
    started = await registry.client.post(
        "/v1/participants/imports", files={"file": ("kpm.csv", content, "text/csv")}, headers=registry.admin
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued" and started.json()["total_rows"] == content.count(b"\n") - 1
    scheduler = registry.runtime.service("participants").scheduler
    assert scheduler is not None
    await scheduler.drain()
    progress = await registry.client.get(f"/v1/participants/imports/{started.json()['id']}", headers=registry.admin)
    return progress.json()


async def test_csv_import_keeps_good_rows_and_reports_bad_ones(registry) -> None:
    job = await _import(registry, CSV)
    assert job["status"] == "done" and job["finished_at"]
    assert (job["processed_rows"], job["created_rows"], job["duplicate_rows"], job["error_rows"]) == (7, 2, 1, 4)
    errors = await registry.client.get(f"/v1/participants/imports/{job['id']}/errors", headers=registry.admin)
    assert errors.status_code == 200 and errors.headers["content-type"].startswith("text/csv")
    found = {(int(r["row"]), r["field"], r["rule"]) for r in csv.DictReader(io.StringIO(errors.text))}
    assert found == {
        (3, "nik", "nik_birth_date_mismatch"),
        (4, "dtsen_decile", "less_than_equal"),
        (6, "birth_date", "date_from_datetime_parsing"),
        (7, "consent", "missing"),
    }
    assert "1371015305900004" not in errors.text and WOMAN_NIK not in errors.text
    listed = await registry.client.get("/v1/participants?programme=BPNT", headers=registry.admin)
    assert [p["full_name"] for p in listed.json()["items"]] == ["Budi Santoso"]


async def test_reuploading_the_same_file_creates_no_duplicates(registry) -> None:
    await _import(registry, CSV)
    again = await _import(registry, CSV)
    assert (again["created_rows"], again["duplicate_rows"]) == (0, 3)
    async with registry.runtime.service("participants").db.transaction() as session:
        assert (await session.execute(select(func.count()).select_from(Participant))).scalar_one() == 2


async def test_upload_problems_are_refused_at_once(registry, auth) -> None:
    missing = await registry.client.post(
        "/v1/participants/imports",
        files={"file": ("x.csv", b"nik,full_name\n1,a\n", "text/csv")},
        headers=registry.admin,
    )
    assert missing.status_code == 422 and missing.json()["errors"][0]["rule"] == "missing_columns"
    empty = await registry.client.post(
        "/v1/participants/imports", files={"file": ("x.csv", HEADER.encode(), "text/csv")}, headers=registry.admin
    )
    assert empty.status_code == 422 and empty.json()["errors"][0]["rule"] == "empty"
    not_writer = await registry.client.post(
        "/v1/participants/imports", files={"file": ("x.csv", CSV, "text/csv")}, headers=auth("facilitator", unit="13")
    )
    assert not_writer.status_code == 403
