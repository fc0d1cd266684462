"""Field survey results imported in bulk (issue 16 item 6) on real PostgreSQL: rows find their task,
meet the single survey's rules, become the same survey versions, monev.completed events and audit
rows; refused rows name a field and a rule; a re-uploaded file doubles nothing."""

from __future__ import annotations

import asyncio
import csv
import io
from dataclasses import replace
from datetime import date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlmodel import col

from pena.auth import Principal
from pena.contracts.monev import MonevIndicators
from pena.import_runs import ChunkResult, ImportContext
from pena.imports import XLSX_MEDIA_TYPE
from pena.tables import scheduled_jobs
from services.monev import measures, survey_imports
from services.monev.models import MonevSurvey
from tests.monev.conftest import World
from tests.monev.support import WIB, announce_completions, completion, in_monev, register, scheduler, tasks
from tests.monev.test_mentoring import Graduated, announce, decided, graduated  # noqa: F401 (a fixture)
from tests.support import audit_rows, outbox_data, outbox_events

ADMIN = Principal(subject="admin-1", client_id="pena-admin", roles=frozenset({"admin"}), scopes=frozenset(), unit=None)


def facilitator(subject: str) -> Principal:
    return Principal(
        subject=subject, client_id="pena-field", roles=frozenset({"facilitator"}), scopes=frozenset(), unit=None
    )


def row(**cells: str) -> dict[Any, Any]:
    """A file's row as the kernel hands it over: every column of the template, "" for an empty cell."""
    base = dict.fromkeys(survey_imports.REQUIRED_COLUMNS + survey_imports.OPTIONAL_COLUMNS, "")
    base.update(
        {
            "participant_id": "p-1",
            "wave": "P3M",
            "visit_date": "2026-03-02",
            "respondent": "participant",
            "business_status": "active",
            "business_field": "fashion_menjahit",
            "monthly_revenue": "3500000",
            "monthly_household_income": "2000000",
            "household_size": "4",
            "workers_employed": "0",
            "business_assets": "5000000",
            "savings": "250000",
            "welfare_self_assessment": "4",
            "voluntary_exit_statement": "ya",
            "notes": "visited at the stall",
        }
    )
    base.update(cells)
    return base


async def process(world: World | Graduated, rows: list[dict[Any, Any]], actor: Principal = ADMIN) -> ChunkResult:
    ctx = ImportContext(import_id="imp-1", actor=actor, settings=world.runtime.settings, clock=world.clock)
    numbered = list(enumerate(rows, start=1))
    return await in_monev(world.runtime, lambda session: survey_imports.process_chunk(session, ctx, numbered))


async def test_rows_become_the_surveys_a_single_submission_makes(world: World) -> None:
    rows = [
        row(),  # 1: found by participant and wave
        row(participant_id="p-404"),  # 2: no such task
        row(task_id=world.task_id, participant_id=""),  # 3: the same visit again (by task id): a duplicate
        row(monthly_revenue="-5", household_size="vier"),  # 4: two bad cells
        row(visit_date="2026-03-11"),  # 5: after today
        row(participant_id="", wave=""),  # 6: nothing to find the task by
        row(kind="monitoring"),  # 7: not a task kind
        row(due_month="2026-02", savings="0"),  # 8: the task again, another visit without correction_reason
    ]
    outcome = await process(world, rows)
    assert (outcome.created, outcome.duplicates) == (1, 1)
    assert outcome.refused == {
        2: [("participant_id", "task_not_found")],
        4: [("monthly_revenue", "greater_than_equal"), ("household_size", "int_parsing")],
        5: [("visit_date", "visit_in_future")],
        6: [("participant_id", "task_id_or_participant_id_required")],
        7: [("kind", "literal_error")],
        8: [("participant_id", "correction_reason_required")],
    }
    [task] = await tasks(world.runtime)
    assert (task.status, task.submission_version, task.done_at) == ("done", 1, world.clock.now())

    [event] = await outbox_events(world.runtime, "monev", "monev.completed")
    data = event["data"]
    assert event["subject"] == "p-1"
    assert (data["task_id"], data["visit_date"], data["submission_version"], data["early"]) == (
        world.task_id,
        "2026-03-02",
        1,
        False,
    )
    assert data["indicators"]["voluntary_exit_statement"] is True  # "ya"
    assert data["measures"]["income_change"] == 1_000_000  # against the baseline, as a single survey
    assert data["measures"]["independence_index"] == 0.9
    assert "stall" not in str(event)

    [audit] = await audit_rows(world.runtime, "monev", "monev.survey.submitted")
    assert (audit.actor, audit.subject_id) == ("admin-1", world.task_id)
    assert audit.details["import_id"] == "imp-1"

    async def stored(session):
        surveys = (await session.execute(select(MonevSurvey))).scalars().all()
        jobs = (
            await session.execute(
                select(scheduled_jobs.c.job_key, scheduled_jobs.c.last_error).where(
                    scheduled_jobs.c.job_key.contains(world.task_id)
                )
            )
        ).all()
        return surveys, jobs

    [survey], jobs = await in_monev(world.runtime, stored)
    assert (survey.submitted_by, survey.version, survey.monthly_revenue) == ("admin-1", 1, 3_500_000)
    assert "stall" not in (survey.notes_encrypted or "")
    # the due job ran; the overdue check is cancelled as a single survey cancels it
    assert {key.split(":")[0]: error for key, error in jobs}["monev.overdue"] == "cancelled"

    # the same file again: nothing doubled
    again = await process(world, rows)
    assert (again.created, again.duplicates) == (0, 2)
    assert again.refused == outcome.refused
    assert len(await outbox_events(world.runtime, "monev", "monev.completed")) == 1


async def test_a_correction_in_the_file_is_a_new_version_and_counted_once(world: World) -> None:
    corrected = row(savings="0", correction_reason="savings were the group's")
    outcome = await process(world, [row(), corrected])
    assert (outcome.created, outcome.duplicates, outcome.refused) == (2, 0, {})
    again = await process(world, [row(), corrected])
    # the first row is no longer the survey in force: its visit differs from version 2, no reason given
    assert (again.created, again.duplicates) == (0, 1)
    assert again.refused == {1: [("participant_id", "correction_reason_required")]}
    versions = [e["data"]["submission_version"] for e in await outbox_events(world.runtime, "monev", "monev.completed")]
    assert versions == [1, 2]
    assert len(await audit_rows(world.runtime, "monev", "monev.survey.corrected")) == 1


async def test_rows_out_of_the_uploaders_reach_or_not_yet_due_are_refused(world: World) -> None:
    await announce_completions(
        world.runtime, completion("p-1", datetime(2026, 2, 20, 10, 0, tzinfo=WIB), batch_id="b2")
    )
    later = next(t for t in await tasks(world.runtime) if t.batch_id == "b2")
    # a facilitator reaches only their own tasks: another's is answered as missing
    other = await process(world, [row(task_id=world.task_id)], actor=facilitator("fac-2"))
    assert other.refused == {1: [("task_id", "task_not_found")]}
    # p-1 has two P3M follow-ups now (two batches): the row must say which
    own = await process(
        world,
        [
            row(),
            row(due_month="2026-05"),  # the second batch's, not yet due
            row(due_month="2026-02", early_reason="", visit_date="2026-02-27"),  # the first's, a day early
            row(task_id=later.id, participant_id="p-2"),
        ],
        actor=facilitator("fac-1"),
    )
    assert own.created == 0
    assert own.refused == {
        1: [("participant_id", "task_ambiguous")],
        2: [("participant_id", "task_not_due")],
        3: [("early_reason", "required_for_early_visit")],
        4: [("task_id", "task_participant_mismatch")],
    }
    early = await process(
        world,
        [row(due_month="2026-02", visit_date="2026-02-27", early_reason="the family travels at month end")],
        actor=facilitator("fac-1"),
    )
    assert (early.created, early.refused) == (1, {})
    [event] = await outbox_events(world.runtime, "monev", "monev.completed")
    assert event["data"]["early"] is True


async def test_a_mentoring_visit_in_a_file_takes_the_mentoring_path(graduated: Graduated) -> None:  # noqa: F811
    await announce(graduated, decided())  # mentoring visits P6M and P12M after the graduation
    graduated.clock.set(datetime(2026, 9, 21, 9, 0, tzinfo=WIB))
    await scheduler(graduated.runtime).drain()
    visit = {"kind": "mentoring", "visit_date": "2026-09-21", "assistance_still_received": "PKH"}
    outcome = await process(
        graduated,
        [row(**visit, wave="P6M"), row(**visit, wave=""), row(**visit, wave="P12M")],
        actor=facilitator("fac-1"),
    )
    assert outcome.created == 1
    assert outcome.refused == {
        2: [("participant_id", "task_ambiguous")],  # two mentoring visits: the row must say which
        3: [("participant_id", "task_not_due")],
    }
    completed = (await outbox_data(graduated.runtime, "monev", "monev.completed"))[-1]
    six = next(t for t in await tasks(graduated.runtime) if t.wave == "P6M")
    # what graduation's relapse check reads: the kind and the decision it follows
    assert (completed["task_id"], completed["kind"], completed["decision_id"]) == (six.id, "mentoring", "d-1")
    assert six.status == "done"
    # after the exit decision PKH still received is dependence (formula 2026.2), as for one survey
    indicators = MonevIndicators.model_validate(completed["indicators"])
    after_exit = measures.compute(indicators, measures.Baseline(1_000_000, 4, exit_decided=True))
    assert completed["measures"]["independence_index"] == after_exit.independence_index


# ------------------------------------------------------------------ over HTTP, as background runs

COLUMNS = list(row())
RUNS = "/v1/monev/imports"


def csv_file(rows: list[dict[Any, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def xlsx_file(rows: list[dict[Any, Any]]) -> bytes:
    """The rows as a field team's workbook: dates as date cells, counts and money as numbers."""
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(COLUMNS)
    for cells in rows:
        values: list[object] = []
        for name in COLUMNS:
            value = cells[name]
            if name == "visit_date":
                values.append(date.fromisoformat(value))
            elif value.isdigit():
                values.append(int(value))
            else:
                values.append(value)
        sheet.append(values)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def upload(world: World, name: str, content: bytes, headers: dict[str, str] | None = None) -> dict[str, Any]:
    media = XLSX_MEDIA_TYPE if name.endswith(".xlsx") else "text/csv"
    started = await world.client.post(
        f"{RUNS}/surveys", files={"file": (name, content, media)}, headers=headers or world.facilitator
    )
    assert started.status_code == 202, started.text
    assert started.headers["location"] == f"{RUNS}/{started.json()['id']}"
    assert started.json()["kind"] == "monev.surveys"
    return started.json()


async def finished(world: World, run: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
    await scheduler(world.runtime).drain()
    progress = await world.client.get(f"{RUNS}/{run['id']}", headers=headers or world.facilitator)
    assert progress.status_code == 200, progress.text
    assert progress.json()["status"] == "done"
    return progress.json()


async def errors_of(world: World, run: dict[str, Any]) -> set[tuple[int, str, str]]:
    answer = await world.client.get(f"{RUNS}/{run['id']}/errors", headers=world.facilitator)
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/csv")
    return {(int(r["row"]), r["field"], r["rule"]) for r in csv.DictReader(io.StringIO(answer.text))}


def counts(run: dict[str, Any]) -> tuple[int, int, int, int, int]:
    return run["total_rows"], run["processed_rows"], run["created_rows"], run["duplicate_rows"], run["error_rows"]


async def test_a_csv_then_the_same_visits_as_xlsx_complete_the_task_once(world: World, auth) -> None:
    rows = [row(), row(participant_id="p-404", notes="Ibu Sari at the market")]
    run = await finished(world, await upload(world, "visits.csv", csv_file(rows)))
    assert counts(run) == (2, 2, 1, 0, 1)
    assert await errors_of(world, run) == {(2, "participant_id", "task_not_found")}
    answer = await world.client.get(f"{RUNS}/{run['id']}/errors", headers=world.facilitator)
    assert "p-404" not in answer.text
    assert "Sari" not in answer.text

    task = (await world.client.get(f"/v1/monev/tasks/{world.task_id}", headers=world.facilitator)).json()
    assert (task["status"], task["submission_version"]) == ("done", 1)
    assert task["result"]["submitted_by"] == "fac-1"
    assert task["result"]["notes"] == "visited at the stall"  # decrypted for the submitter, as one survey

    again = await finished(world, await upload(world, "visits.xlsx", xlsx_file(rows)))
    assert counts(again) == (2, 2, 0, 1, 1)
    assert await errors_of(world, again) == {(2, "participant_id", "task_not_found")}
    assert len(await outbox_events(world.runtime, "monev", "monev.completed")) == 1
    assert len(await audit_rows(world.runtime, "monev", "monev.survey.import")) == 2

    # a run is the uploader's (and admins'): another facilitator is answered 404
    other = await world.client.get(f"{RUNS}/{run['id']}", headers=auth("facilitator", sub="fac-2"))
    assert other.status_code == 404


async def test_the_published_template_is_accepted_back(world: World) -> None:
    for accept, name in (("text/csv", "template.csv"), (XLSX_MEDIA_TYPE, "template.xlsx")):
        template = await world.client.get(f"{RUNS}/templates/surveys", headers={**world.facilitator, "Accept": accept})
        assert template.status_code == 200, template.text
        run = await finished(world, await upload(world, name, template.content))
        # every example value is valid; only its participant is unknown here
        assert counts(run) == (1, 1, 0, 0, 1)
        assert await errors_of(world, run) == {(1, "participant_id", "task_not_found")}
    template = await world.client.get(f"{RUNS}/templates/surveys", headers=world.facilitator)
    header, example = list(csv.reader(io.StringIO(template.text)))
    assert header[: len(survey_imports.REQUIRED_COLUMNS)] == list(survey_imports.REQUIRED_COLUMNS)
    assert dict(zip(header, example, strict=True))["visit_date"] == "2023-07-20"


async def test_a_run_stopped_in_the_middle_of_a_chunk_finishes_with_every_row_once(world: World, monkeypatch) -> None:
    people = [f"p-{n}" for n in range(2, 7)]
    for participant in people:
        await register(world.runtime, participant)
    await announce_completions(
        world.runtime, *(completion(p, datetime(2025, 11, 30, 10, 0, tzinfo=WIB)) for p in people)
    )
    monkeypatch.setattr(survey_imports.SURVEYS, "layout", replace(survey_imports.SURVEYS.layout, chunk_rows=2))
    rows = [row(participant_id=p) for p in ["p-1", *people]]  # six rows: three chunks
    run = await upload(world, "visits.csv", csv_file(rows))
    first = scheduler(world.runtime)
    while (await world.client.get(f"{RUNS}/{run['id']}", headers=world.facilitator)).json()["processed_rows"] < 2:
        assert await first.run_once() > 0

    # the next chunk stops dead after its writes, before its commit (a killed process)
    reached, never = asyncio.Event(), asyncio.Event()
    real_record_audits = survey_imports.record_audits

    async def stall(session, rows):
        await real_record_audits(session, rows)
        reached.set()
        await never.wait()

    monkeypatch.setattr(survey_imports, "record_audits", stall)
    stopped = asyncio.create_task(first.run_once())
    await asyncio.wait_for(reached.wait(), 60)
    stopped.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stopped
    monkeypatch.setattr(survey_imports, "record_audits", real_record_audits)
    halfway = (await world.client.get(f"{RUNS}/{run['id']}", headers=world.facilitator)).json()
    assert (halfway["status"], halfway["processed_rows"], halfway["created_rows"]) == ("running", 2, 2)
    assert len(await outbox_events(world.runtime, "monev", "monev.completed")) == 2

    # a new process picks the run up where it stood
    done = await finished(world, run)
    assert counts(done) == (6, 6, 6, 0, 0)
    completed = await outbox_events(world.runtime, "monev", "monev.completed")
    assert sorted(e["subject"] for e in completed) == sorted(["p-1", *people])
    assert len(await audit_rows(world.runtime, "monev", "monev.survey.submitted")) == 6

    async def versions(session):
        return (await session.execute(select(col(MonevSurvey.task_id), col(MonevSurvey.version)))).all()

    stored = await in_monev(world.runtime, versions)
    assert len(stored) == 6
    assert {v for _, v in stored} == {1}
    assert {t.status for t in await tasks(world.runtime)} == {"done"}
