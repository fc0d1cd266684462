"""The training backfill imports over HTTP, on the kernel's import runs (real PostgreSQL; the chunk
jobs run by the service's scheduler): five files in order, then the same files again; the errors
file; templates (CSV and XLSX) downloaded and accepted back; a workbook like a CSV; and a restart in
the middle of a multi-chunk import that neither loses nor doubles a row or an event."""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import httpx
from openpyxl import Workbook, load_workbook
from sqlalchemy import select
from sqlmodel import col

from pena.clock import ManualClock
from pena.imports import XLSX_MEDIA_TYPE
from pena.runtime import Runtime
from services.training import backfill
from services.training.app import definition as training
from services.training.models import Attendance, Enrolment
from tests.support import count_rows, in_service, outbox_data, outbox_names, participants_publisher, register
from tests.training.backfill_support import (
    ATTENDANCE_CSV,
    BATCHES_CSV,
    CENTRE,
    COMPLETIONS_CSV,
    ENROLMENTS_CSV,
    SESSIONS_CSV,
)
from tests.training.support import create_centre

FILES = (
    ("batches", BATCHES_CSV),
    ("sessions", SESSIONS_CSV),
    ("enrolments", ENROLMENTS_CSV),
    ("attendance", ATTENDANCE_CSV),
    ("completions", COMPLETIONS_CSV),
)


async def upload(
    runtime: Runtime,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    kind: str,
    content: bytes,
    *,
    xlsx: bool = False,
) -> dict[str, Any]:
    """Uploads one file, runs its chunk jobs to the end and returns the run as GET answers it."""
    name, media = (f"{kind}.xlsx", XLSX_MEDIA_TYPE) if xlsx else (f"{kind}.csv", "text/csv")
    started = await client.post(f"/v1/batches/imports/{kind}", files={"file": (name, content, media)}, headers=headers)
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"/v1/batches/imports/{started.json()['id']}"
    scheduler = runtime.service("training").scheduler
    assert scheduler is not None
    await scheduler.drain()
    run = await client.get(started.headers["location"], headers=headers)
    assert run.status_code == 200, run.text
    return dict(run.json())


def counts(run: dict[str, Any]) -> tuple[str, int, int, int, int]:
    return run["status"], run["processed_rows"], run["created_rows"], run["duplicate_rows"], run["error_rows"]


async def test_a_2023_cohort_loaded_by_files_then_the_same_files_again(runtime, api, auth) -> None:
    await register(runtime, "p-1", "p-2", "p-3")
    admin = auth("admin")
    async with api(runtime) as client:
        await create_centre(client, admin, CENTRE)
        first = [counts(await upload(runtime, client, admin, kind, text.encode())) for kind, text in FILES]
        assert first == [
            ("done", 1, 1, 0, 0),
            ("done", 5, 5, 0, 0),
            ("done", 3, 3, 0, 0),
            ("done", 12, 11, 1, 0),
            ("done", 1, 1, 0, 0),
        ]
        events = await outbox_names(runtime, "training")
        assert sorted(events) == sorted(
            ["training.batch_scheduled"] + ["training.enrolled"] * 3 + ["training.completed"] * 2 + ["training.dropped"]
        )
        [batch] = (await client.get("/v1/batches", headers=admin)).json()["items"]
        assert (batch["batch_ref"], batch["status"], batch["start_date"]) == ("PDG-2023-01", "completed", "2023-04-03")
        roster = (await client.get(f"/v1/batches/{batch['id']}/roster", headers=admin)).json()
        assert sorted((e["participant_id"], e["status"], e["sessions_attended"]) for e in roster["items"]) == [
            ("p-1", "completed", 5),
            ("p-2", "completed", 4),
            ("p-3", "dropped", 2),
        ]
        again = [counts(await upload(runtime, client, admin, kind, text.encode())) for kind, text in FILES]
        assert again == [
            ("done", 1, 0, 1, 0),
            ("done", 5, 0, 5, 0),
            ("done", 3, 0, 3, 0),
            ("done", 12, 0, 12, 0),
            ("done", 1, 0, 1, 0),
        ]
    assert await outbox_names(runtime, "training") == events  # nothing announced twice
    completed = await outbox_data(runtime, "training", "training.completed")
    assert {c["completed_at"] for c in completed} == {"2023-04-14T10:00:00+07:00"}  # monev counts from here


async def test_the_errors_file_names_row_field_and_rule_and_no_value(runtime, api, auth) -> None:
    await register(runtime, "p-1")
    admin = auth("admin")
    operator_elsewhere = auth("centre_operator", unit="another-centre", sub="op-9")
    async with api(runtime) as client:
        await create_centre(client, admin, CENTRE)
        await upload(runtime, client, admin, "batches", BATCHES_CSV.encode())
        content = (
            "centre_code,batch_ref,participant_id,exit_agreement\n"
            f"{CENTRE},PDG-2023-01,p-1,yes\n"
            f"{CENTRE},PDG-2023-01,p-secret-7,yes\n"
            f"{CENTRE},PDG-2099,p-1,yes\n"
            f"{CENTRE},PDG-2023-01,p-1,sometimes\n"
            f"{CENTRE},PDG-2023-01,p-1,yes\n"
        ).encode()
        run = await upload(runtime, client, admin, "enrolments", content)
        assert counts(run) == ("done", 5, 1, 1, 3)  # row 5 meets p-1 already enrolled: a duplicate
        errors = await client.get(f"/v1/batches/imports/{run['id']}/errors", headers=admin)
        assert errors.status_code == 200
        assert errors.headers["content-type"].startswith("text/csv")
        assert list(csv.reader(io.StringIO(errors.text))) == [
            ["row", "field", "rule"],
            ["2", "participant_id", "known_in_centre_regions"],
            ["3", "batch_ref", "known_batch"],
            ["4", "exit_agreement", "bool_parsing"],
        ]
        assert "p-secret-7" not in errors.text
        assert "PDG-2099" not in errors.text
        # the run is the uploader's: another caller gets the 404 of a missing one
        assert (await client.get(f"/v1/batches/imports/{run['id']}", headers=operator_elsewhere)).status_code == 404
        # the operator of another centre reaches none of this centre's batches: every row refused, nothing told
        foreign = await upload(runtime, client, operator_elsewhere, "sessions", SESSIONS_CSV.encode())
        assert counts(foreign) == ("done", 5, 0, 0, 5)
        bad_header = await client.post(
            "/v1/batches/imports/sessions",
            files={"file": ("s.csv", b"centre_code,batch_ref,day\nX,Y,2023-01-01\n", "text/csv")},
            headers=admin,
        )
        assert bad_header.status_code == 422
        assert {e["rule"] for e in bad_header.json()["errors"]} == {"missing_columns"}


def _workbook(text: str) -> bytes:
    """A CSV as a field team's workbook: dates as date cells, small whole numbers as numbers."""
    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    for line in csv.reader(io.StringIO(text)):
        cells: list[object] = []
        for value in line:
            if len(value) == 10 and value[4:5] == "-" and value[7:8] == "-":
                cells.append(date.fromisoformat(value))
            elif value.isdigit() and len(value) < 4:
                cells.append(int(value))
            else:
                cells.append(value)
        sheet.append(cells)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_workbooks_import_like_csv_files(runtime, api, auth) -> None:
    await register(runtime, "p-1", "p-2", "p-3")
    admin = auth("admin")
    async with api(runtime) as client:
        await create_centre(client, admin, CENTRE)
        runs = [counts(await upload(runtime, client, admin, k, _workbook(t), xlsx=True)) for k, t in FILES]
    assert runs == [
        ("done", 1, 1, 0, 0),
        ("done", 5, 5, 0, 0),
        ("done", 3, 3, 0, 0),
        ("done", 12, 11, 1, 0),
        ("done", 1, 1, 0, 0),
    ]
    assert len(await outbox_data(runtime, "training", "training.completed")) == 2


async def test_templates_are_published_and_accepted_back(runtime, api, auth) -> None:
    example_participant = backfill.ENROLMENTS.example["participant_id"]
    await register(runtime, example_participant)
    admin = auth("admin")
    operator = auth("centre_operator", unit="c-1", sub="op-1")
    async with api(runtime) as client:
        await create_centre(client, admin, CENTRE)
        for kind in backfill.KINDS:
            as_csv = await client.get(f"/v1/batches/imports/templates/{kind.path}", headers=operator)
            assert as_csv.status_code == 200
            assert as_csv.headers["content-type"].startswith("text/csv")
            header, example = list(csv.reader(io.StringIO(as_csv.text)))
            assert header == list(kind.layout.required + kind.layout.optional)
            assert example == [kind.example.get(c, "") for c in header]
            as_xlsx = await client.get(
                f"/v1/batches/imports/templates/{kind.path}", headers={**admin, "Accept": XLSX_MEDIA_TYPE}
            )
            assert as_xlsx.status_code == 200
            sheet = load_workbook(io.BytesIO(as_xlsx.content), read_only=True).worksheets[0]
            assert [list(r) for r in sheet.iter_rows(values_only=True)][0] == header
            # the filled template goes back as it is, the workbook: each kind's example row is recorded
            run = await upload(runtime, client, admin, kind.path, as_xlsx.content, xlsx=True)
            assert counts(run) == ("done", 1, 1, 0, 0), kind.name
        openapi = (await client.get("/openapi.json")).json()
    for kind in backfill.KINDS:
        assert f"/v1/batches/imports/{kind.path}" in openapi["paths"]
        assert f"/v1/batches/imports/templates/{kind.path}" in openapi["paths"]
    [completed] = await outbox_data(runtime, "training", "training.completed")
    assert completed["participant_id"] == example_participant


async def test_a_restart_in_the_middle_of_an_import_loses_and_doubles_nothing(
    make_runtime, api, auth, settings, monkeypatch
) -> None:
    """Twelve enrolments in three chunks of five; the process dies while writing the second chunk (its
    transaction never commits), and a new process on the same database finishes the import."""
    people = [f"p-{n:02}" for n in range(12)]
    first = await make_runtime([participants_publisher, training], clock=ManualClock(datetime(2026, 1, 5, tzinfo=UTC)))
    await register(first, *people)
    admin = auth("admin")
    monkeypatch.setattr(backfill.ENROLMENTS, "layout", replace(backfill.ENROLMENTS.layout, chunk_rows=5))
    real = backfill.ENROLMENTS.process
    crashed: list[int] = []

    async def dies_in_chunk_two(session, ctx, rows):
        result = await real(session, ctx, rows)  # the chunk's rows, events and audit are written...
        if rows[0][0] == 6 and not crashed:
            crashed.append(len(rows))
            raise RuntimeError("the process died before the chunk's commit")  # ...and never committed
        return result

    monkeypatch.setattr(backfill.ENROLMENTS, "process", dies_in_chunk_two)
    content = "centre_code,batch_ref,participant_id,exit_agreement\n" + "".join(
        f"{CENTRE},PDG-2023-01,{p},yes\n" for p in people
    )
    async with api(first) as client:
        await create_centre(client, admin, CENTRE)
        await upload(first, client, admin, "batches", BATCHES_CSV.encode())
        started = await client.post(
            "/v1/batches/imports/enrolments", files={"file": ("e.csv", content.encode(), "text/csv")}, headers=admin
        )
        assert started.status_code == 202, started.text
        scheduler = first.service("training").scheduler
        assert scheduler is not None
        await scheduler.drain()  # chunk 1 commits; chunk 2 dies (its job is retried later)
        run = (await client.get(started.headers["location"], headers=admin)).json()
    assert crashed == [5]
    assert counts(run) == ("running", 5, 5, 0, 0)
    assert await count_rows(first, "training", Enrolment) == 5
    assert len(await outbox_data(first, "training", "training.enrolled")) == 5
    await first.stop()

    # a new process on the same databases, once the failed chunk's retry is due
    second = await make_runtime(
        [participants_publisher, training], clock=ManualClock(datetime(2026, 1, 5, 1, tzinfo=UTC))
    )
    scheduler = second.service("training").scheduler
    assert scheduler is not None
    await scheduler.drain()
    async with api(second) as client:
        run = (await client.get(started.headers["location"], headers=admin)).json()
    assert counts(run) == ("done", 12, 12, 0, 0)

    async def enrolled(session):
        return sorted((await session.execute(select(col(Enrolment.participant_id)))).scalars().all())

    assert await in_service(second, "training", enrolled) == people  # each once
    announced = await outbox_data(second, "training", "training.enrolled")
    assert sorted(e["participant_id"] for e in announced) == people  # each announced once
    assert await count_rows(second, "training", Attendance) == 0
