from __future__ import annotations

import asyncio
import csv
import io
import json
from dataclasses import replace
from datetime import date

import pytest
from sqlalchemy import func, select, text
from sqlmodel import col

from pena import db as db_module
from pena import import_runs, parallel
from pena.auth import Principal
from pena.crypto import nik_token
from pena.envelope import CloudEvent
from pena.imports import XLSX_MEDIA_TYPE
from pena.tables import audit_log, import_chunks
from services.participants import imports
from services.participants.identity import kk_token
from services.participants.models import Participant, ParticipantChange
from services.participants.registration import register, register_many
from services.participants.schemas import ParticipantCreate
from tests.participants.support import MAN_KK, MAN_NIK, WOMAN_NIK, family_of, man, woman
from tests.support import outbox_events

HEADER = (
    "nik,kk_number,full_name,birth_date,sex,region_code,business_field,assistance_programmes,dtsen_decile,"
    "consent_purpose,consent_given_on,consent_recorded_by\n"
)
CONSENT = ",PENA programme participation,2026-10-01,fac-1"
ROWS = [
    f"{WOMAN_NIK},1371012001150003,Siti Rahmawati,1990-05-12,F,1371011001,fashion_menjahit,PKH,1",
    f"{MAN_NIK},{MAN_KK},Budi Santoso,1985-01-03,M,1371011001,kuliner,PKH;BPNT,2",
    # row 3: NIK says 13 May, birth date says 12 May
    "1371015305900004,1371012001150003,Ani,1990-05-12,F,1371011001,kuliner,PKH,1",
    # row 4: unknown regency and a decile out of range
    "1371010301850009,1371012001150003,Joko,1985-01-03,M,1399011001,jasa,,11",
    # row 5: the same NIK again within the file
    f"{MAN_NIK},{MAN_KK},Budi Santoso,1985-01-03,M,1371011001,kuliner,PKH,2",
    # row 6: a malformed date
    "3171010301850002,3171012001150003,Agus,03-01-1985,M,3171011001,dagang,BPNT,3",
]
ROWS = [row + CONSENT for row in ROWS] + [
    # row 7: no consent recorded
    "1371014101920003,1371012001150003,Rina,1992-01-01,F,1371011001,kuliner,PKH,1,,,",
]
CSV = (HEADER + "\n".join(ROWS) + "\n").encode()


async def _import(registry, content: bytes, headers: dict[str, str] | None = None, files_name: str = "kpm.csv") -> dict:
    headers = headers or registry.admin
    started = await registry.client.post(
        "/v1/participants/imports", files={"file": (files_name, content)}, headers=headers
    )
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    if files_name.endswith(".csv"):
        assert started.json()["total_rows"] == content.count(b"\n") - 1
    scheduler = registry.runtime.service("participants").scheduler
    assert scheduler is not None
    await scheduler.drain()
    progress = await registry.client.get(f"/v1/participants/imports/{started.json()['id']}", headers=headers)
    return progress.json()


@pytest.mark.parametrize(
    ("chunk_rows", "in_workers"), [(imports.CHUNK_ROWS, False), (2, False), (imports.CHUNK_ROWS, True)]
)
async def test_csv_import_keeps_good_rows_and_reports_bad_ones(registry, monkeypatch, chunk_rows, in_workers) -> None:
    # 2: four chunks, row 5 repeats row 2 of chunk 1
    monkeypatch.setattr(imports.REGISTRATIONS, "layout", replace(imports.REGISTRATIONS.layout, chunk_rows=chunk_rows))
    if in_workers:  # the chunk's rows prepared in the worker processes, in parts of 3, 2 and 2 rows
        assert registry.runtime.settings.worker_processes == 2
        monkeypatch.setattr(parallel, "MIN_PART", 2)
        monkeypatch.setattr(import_runs, "WORKERS_MIN_ROWS", 7)
        calls: list[int] = []
        real_iter_parts = parallel.iter_parts

        async def counted(fn, items, arg, *, workers, per_worker=1):
            calls.append(0)
            async for part in real_iter_parts(fn, items, arg, workers=workers, per_worker=per_worker):
                calls[-1] += 1
                yield part

        monkeypatch.setattr(parallel, "iter_parts", counted)
    job = await _import(registry, CSV)
    assert job["status"] == "done"
    assert job["finished_at"]
    assert (job["processed_rows"], job["created_rows"], job["duplicate_rows"], job["error_rows"]) == (7, 2, 1, 4)
    errors = await registry.client.get(f"/v1/participants/imports/{job['id']}/errors", headers=registry.admin)
    assert errors.status_code == 200
    assert errors.headers["content-type"].startswith("text/csv")
    found = {(int(r["row"]), r["field"], r["rule"]) for r in csv.DictReader(io.StringIO(errors.text))}
    assert found == {
        (3, "nik", "nik_birth_date_mismatch"),
        (4, "dtsen_decile", "less_than_equal"),
        (6, "birth_date", "date_from_datetime_parsing"),
        (7, "consent", "missing"),
    }
    assert "1371015305900004" not in errors.text
    assert WOMAN_NIK not in errors.text
    listed = await registry.client.get("/v1/participants?programme=BPNT", headers=registry.admin)
    assert [p["full_name"] for p in listed.json()["items"]] == ["Budi Santoso"]
    if in_workers:
        assert calls == [3]  # one chunk of 7 rows, in three parts: row 5 repeats row 2 of the first


def _xlsx(csv_content: bytes) -> bytes:
    """The CSV as a field team's workbook: dates as date cells, small numbers as numbers, NIK and KK as
    text (a 16-digit number does not survive a spreadsheet's 15 significant digits)."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for line in csv.reader(io.StringIO(csv_content.decode())):
        cells: list[object] = []
        for value in line:
            if len(value) == 10 and value[4:5] == "-" and value[7:8] == "-":
                cells.append(date.fromisoformat(value))
            elif value.isdigit() and len(value) < 3:
                cells.append(int(value))
            else:
                cells.append(value)
        sheet.append(cells)
    sheet.append([])  # a trailing empty row, as spreadsheets often have
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_an_xlsx_workbook_imports_like_the_csv(registry) -> None:
    content = _xlsx(CSV)
    started = await registry.client.post(
        "/v1/participants/imports", files={"file": ("kpm.xlsx", content, XLSX_MEDIA_TYPE)}, headers=registry.admin
    )
    assert started.status_code == 202, started.text
    assert started.json()["total_rows"] == 7
    scheduler = registry.runtime.service("participants").scheduler
    assert scheduler is not None
    await scheduler.drain()
    job = (await registry.client.get(f"/v1/participants/imports/{started.json()['id']}", headers=registry.admin)).json()
    assert (job["processed_rows"], job["created_rows"], job["duplicate_rows"], job["error_rows"]) == (7, 2, 1, 4)
    errors = await registry.client.get(f"/v1/participants/imports/{job['id']}/errors", headers=registry.admin)
    found = {(int(r["row"]), r["field"], r["rule"]) for r in csv.DictReader(io.StringIO(errors.text))}
    assert found == {
        (3, "nik", "nik_birth_date_mismatch"),
        (4, "dtsen_decile", "less_than_equal"),
        (6, "birth_date", "date_from_datetime_parsing"),
        (7, "consent", "missing"),
    }
    damaged = await registry.client.post(
        "/v1/participants/imports", files={"file": ("kpm.xlsx", content[:200], XLSX_MEDIA_TYPE)}, headers=registry.admin
    )
    assert damaged.status_code == 422
    assert damaged.json()["errors"][0]["rule"] == "xlsx"


async def test_processed_chunks_leave_nothing_of_the_upload(registry, monkeypatch) -> None:
    monkeypatch.setattr(imports.REGISTRATIONS, "layout", replace(imports.REGISTRATIONS.layout, chunk_rows=2))
    started = await registry.client.post(
        "/v1/participants/imports", files={"file": ("kpm.csv", CSV, "text/csv")}, headers=registry.admin
    )
    stored = await _all(registry, select(import_chunks.c.seq, import_chunks.c.first_row, import_chunks.c.content_enc))
    assert [(seq, first) for seq, first, _ in sorted(stored)] == [(0, 1), (1, 3), (2, 5), (3, 7)]
    assert all(WOMAN_NIK not in sealed and "Siti" not in sealed for _, _, sealed in stored)  # encrypted
    scheduler = registry.runtime.service("participants").scheduler
    assert scheduler is not None
    await scheduler.drain()
    job = (await registry.client.get(f"/v1/participants/imports/{started.json()['id']}", headers=registry.admin)).json()
    assert job["status"] == "done"
    assert await _all(registry, select(func.count()).select_from(import_chunks)) == [(0,)]


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
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["rule"] == "missing_columns"
    empty = await registry.client.post(
        "/v1/participants/imports", files={"file": ("x.csv", HEADER.encode(), "text/csv")}, headers=registry.admin
    )
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["rule"] == "empty"
    nul = await registry.client.post(
        "/v1/participants/imports", files={"file": ("x.csv", CSV + b"\x00", "text/csv")}, headers=registry.admin
    )
    assert nul.status_code == 422
    assert nul.json()["errors"][0]["rule"] == "nul_character"
    # a bare carriage return (found by the fuzzer, once a 500): read as a line break, so this file's
    # header is the one column "a"
    bare_cr = await registry.client.post(
        "/v1/participants/imports",
        files={"file": ("x.csv", b"a\nb\rc\xc2\x85d\r\ni\r\n", "text/csv")},
        headers=registry.admin,
    )
    assert bare_cr.status_code == 422, bare_cr.text
    assert bare_cr.json()["errors"][0]["rule"] == "missing_columns"
    # a file the csv module cannot read (a field above its size limit) is refused whole, not a 500
    unreadable = await registry.client.post(
        "/v1/participants/imports",
        files={"file": ("x.csv", HEADER.encode() + b'"' + b"x" * 200_000 + b'"\n', "text/csv")},
        headers=registry.admin,
    )
    assert unreadable.status_code == 422, unreadable.text
    assert unreadable.json()["errors"][0] == {
        "field": "file",
        "rule": "csv_malformed",
        "message": unreadable.json()["errors"][0]["message"],
    }
    not_writer = await registry.client.post(
        "/v1/participants/imports", files={"file": ("x.csv", CSV, "text/csv")}, headers=auth("facilitator", unit="13")
    )
    assert not_writer.status_code == 403


async def _all(registry, statement) -> list:
    async with registry.runtime.service("participants").db.transaction() as session:
        return list((await session.execute(statement)).all())


@pytest.mark.parametrize("through_copy", [False, True])
async def test_each_created_participant_gets_history_audit_and_one_registered_event(
    registry, monkeypatch, through_copy
) -> None:
    if through_copy:  # history, audit and outbox rows through COPY, as chunks of 500 rows or more write them
        monkeypatch.setattr(db_module, "COPY_MIN_ROWS", 1)
    single = await registry.client.post(
        "/v1/participants", json=woman(nik="1371015205900003", full_name="Dewi Lestari"), headers=registry.admin
    )
    assert single.status_code == 201, single.text
    job = await _import(registry, CSV)
    others = select(col(Participant.id)).where(col(Participant.id) != single.json()["id"])
    created = {pid for (pid,) in await _all(registry, others)}
    assert job["created_rows"] == len(created) == 2

    history = await _all(registry, select(ParticipantChange).where(col(ParticipantChange.participant_id).in_(created)))
    assert sorted((h.participant_id, h.version, h.action, h.to_status, h.actor) for (h,) in history) == sorted(
        (pid, 1, "registered", "candidate", "dev-admin") for pid in created
    )
    audits = await _all(
        registry,
        select(audit_log.c.subject_id, audit_log.c.purpose, audit_log.c.details).where(
            audit_log.c.action == "participant.register", audit_log.c.purpose == "bulk import"
        ),
    )
    assert sorted(a.subject_id for a in audits) == sorted(created)
    assert all(a.details == {"flagged_possible_duplicate": False} for a in audits)

    events = await outbox_events(registry.runtime, "participants", "participant.registered")
    imported = [e for e in events if e["subject"] in created]
    assert sorted(e["subject"] for e in imported) == sorted(created)  # exactly one each
    api_event = next(e for e in events if e["subject"] == single.json()["id"])
    assert all(set(e["data"]) == set(api_event["data"]) for e in imported)  # the payload register() emits
    # the envelopes are the CloudEvent model's JSON, with the API event's attributes (but its request's ids)
    assert all(CloudEvent.model_validate(e).model_dump(mode="json", exclude_none=True) == e for e in imported)
    context = {"correlationid", "causationid", "traceparent"}
    assert all(set(e) - context == set(api_event) - context for e in imported)
    budi = next(e["data"] for e in imported if e["data"]["nik_token"] == nik_token(MAN_NIK, "dev-only-not-a-secret"))
    assert budi == {
        "participant_id": budi["participant_id"],
        "version": 1,
        "nik_token": nik_token(MAN_NIK, "dev-only-not-a-secret"),
        "registered_at": budi["registered_at"],
        "region_code": "1371011001",
        "sex": "M",
        "birth_year": 1985,
        "business_field": "kuliner",
        "assistance_programmes": ["PKH", "BPNT"],
        "dtsen_decile": 2,
        "household_size": None,
        "baseline_monthly_income": None,
        "status": "candidate",
        "household_id": budi["household_id"],
        "kk_token": kk_token(MAN_KK, "dev-only-not-a-secret"),
    }
    assert budi["household_id"]
    dumped = json.dumps(imported)
    for secret in (WOMAN_NIK, MAN_NIK, "1371012001150003", MAN_KK, "Siti Rahmawati", "Budi Santoso", "1990-05-12"):
        assert secret not in dumped


@pytest.mark.parametrize("in_workers", [False, True])
async def test_duplicates_against_the_registry_and_within_the_file_and_possible_twins(
    registry, monkeypatch, in_workers
) -> None:
    if in_workers:  # the chunk in four parts registered one after the other: rows 1-2, 3-4, 5, 6
        monkeypatch.setattr(parallel, "MIN_PART", 1)
        monkeypatch.setattr(import_runs, "WORKERS_MIN_ROWS", 6)
    stored = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    assert stored.status_code == 201
    consent = "PENA programme participation,2026-10-01,fac-1"
    content = (
        HEADER
        + f"{WOMAN_NIK},1371012001150003,Siti Rahmawati,1990-05-12,F,1371011001,,,,{consent}\n"  # registered
        + f"{MAN_NIK},{MAN_KK},Budi Santoso,1985-01-03,M,1371011001,,,,{consent}\n"
        + f"{MAN_NIK},{MAN_KK},Budi S.,1985-01-03,M,1371011001,,,,{consent}\n"  # again in the file
        # same name and birth date as the stored woman, another NIK: a possible duplicate of her
        + f"1371015205900003,{family_of('1371015205900003')},SITI  Rahmawati,1990-05-12,F,1371011001,,,,{consent}\n"
        # same name and birth date as row 2 of this file, another NIK: a possible duplicate of row 2
        + f"1371010301850005,{family_of('1371010301850005')},Budi Santoso,1985-01-03,M,1371011001,,,,{consent}\n"
        # and again: still of row 2, the first of them in the file (row 5 was stored in the same instant)
        + f"1371010301850007,{family_of('1371010301850007')},Budi Santoso,1985-01-03,M,1371011001,,,,{consent}\n"
    ).encode()
    job = await _import(registry, content)
    assert (job["created_rows"], job["duplicate_rows"], job["error_rows"]) == (4, 2, 0)
    rows = await _all(registry, select(Participant))
    by_token = {p.nik_token: p for (p,) in rows}
    key = registry.runtime.settings.nik_hmac_key
    budi = by_token[nik_token(MAN_NIK, key)]
    assert not budi.flagged
    assert by_token[nik_token("1371015205900003", key)].possible_duplicate_of == stored.json()["id"]
    assert by_token[nik_token("1371010301850005", key)].possible_duplicate_of == budi.id
    assert by_token[nik_token("1371010301850007", key)].possible_duplicate_of == budi.id
    assert len(rows) == 5


async def test_a_registration_committing_during_a_chunk_makes_a_duplicate_not_a_failure(registry) -> None:
    """The single registration holds the NIK (uncommitted) when the chunk looks it up; the chunk's
    INSERT waits on the unique index, then skips that row once the registration commits."""
    runtime = registry.runtime
    db = runtime.service("participants").db
    settings = runtime.settings
    actor = Principal(subject="admin", client_id="t", roles=frozenset({"admin"}), scopes=frozenset())
    async with db.sessions() as single:
        await register(single, actor=actor, settings=settings, clock=runtime.clock, data=ParticipantCreate(**woman()))

        async def chunk():
            async with db.transaction() as session:
                items = [ParticipantCreate(**woman()), ParticipantCreate(**man())]
                return await register_many(
                    session, actor=actor, settings=settings, clock=runtime.clock, items=items, purpose="bulk import"
                )

        running = asyncio.create_task(chunk())
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        for _ in range(100):
            if (await _all(registry, waiting))[0][0] == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the chunk never waited for the registration")
        await single.commit()
    outcome = await asyncio.wait_for(running, timeout=10)
    assert (outcome.created, outcome.duplicates, outcome.errors) == (1, 1, {})
    rows = await _all(registry, select(col(Participant.nik_token)))
    assert sorted(t for (t,) in rows) == sorted(nik_token(n, settings.nik_hmac_key) for n in (WOMAN_NIK, MAN_NIK))
    events = await outbox_events(runtime, "participants", "participant.registered")
    assert len(events) == 2
    assert len({e["subject"] for e in events}) == 2


async def test_uploads_above_the_cap_are_refused_and_larger_files_than_other_bodies_accepted(
    make_runtime, api, auth, settings
) -> None:
    from services.participants.app import definition

    small = settings.model_copy(update={"max_body_bytes": 1024 * 1024, "max_upload_bytes": 2 * 1024 * 1024})
    client = api(await make_runtime([definition], settings_=small))
    padding = "x" * 900
    row = f"{WOMAN_NIK},1371012001150003,Siti,1990-05-12,F,1371011001,{padding}" + CONSENT + "\n"
    header = "nik,kk_number,full_name,birth_date,sex,region_code,address," + HEADER.split(",", 9)[9]
    fits = (header + row * 1500).encode()  # 1.4 MB: above max_body_bytes, below max_upload_bytes
    too_big = (header + row * 2500).encode()  # 2.4 MB
    ok = await client.post("/v1/participants/imports", files={"file": ("a.csv", fits)}, headers=auth("admin"))
    assert ok.status_code == 202
    assert ok.json()["total_rows"] == 1500
    refused = await client.post("/v1/participants/imports", files={"file": ("b.csv", too_big)}, headers=auth("admin"))
    assert refused.status_code == 413
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert str(small.max_upload_bytes) in refused.json()["detail"]


async def test_an_import_registers_only_rows_in_the_uploaders_reach(registry, auth) -> None:
    narrowed = auth("integrator", unit="1375", sub="int-bukittinggi")
    bukittinggi = f"{MAN_NIK},1375012001150003,Budi Santoso,1985-01-03,M,1375011001,kuliner,PKH,2{CONSENT}"
    job = await _import(registry, (HEADER + ROWS[0] + "\n" + bukittinggi + "\n").encode(), headers=narrowed)
    assert (job["status"], job["created_rows"], job["error_rows"]) == ("done", 1, 1)
    errors = await registry.client.get(f"/v1/participants/imports/{job['id']}/errors", headers=narrowed)
    assert errors.text.splitlines()[1:] == ["1,region_code,outside_reach"]
    listed = await registry.client.get("/v1/participants", headers=registry.admin)
    assert [p["region_code"] for p in listed.json()["items"]] == ["1375011001"]


@pytest.mark.parametrize("accept", ["text/csv", XLSX_MEDIA_TYPE])
async def test_the_published_template_is_accepted_back(registry, accept) -> None:
    template = await registry.client.get(
        "/v1/participants/imports/templates/participants", headers={**registry.admin, "Accept": accept}
    )
    assert template.status_code == 200, template.text
    assert template.headers["content-type"].startswith(accept)
    if accept == "text/csv":
        header = next(csv.reader(io.StringIO(template.text)))
        assert header == list(imports.REGISTRATIONS.columns)  # every column the import accepts, required first
    name = "template.xlsx" if accept == XLSX_MEDIA_TYPE else "template.csv"
    job = await _import(registry, template.content, files_name=name)
    assert (job["kind"], job["created_rows"], job["error_rows"]) == ("participants", 1, 0), job
