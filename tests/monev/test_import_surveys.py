"""Field survey results imported in bulk (issue 16 item 6) on real PostgreSQL: rows find their task,
meet the single survey's rules, become the same survey versions, monev.completed events and audit
rows; refused rows name a field and a rule; a re-uploaded file doubles nothing."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from pena import imports as bulk
from pena.auth import Principal
from pena.tables import scheduled_jobs
from services.monev import survey_imports
from services.monev.models import MonevSurvey
from tests.monev.conftest import World
from tests.monev.support import WIB, announce_completions, completion, in_monev, tasks
from tests.support import audit_rows, outbox_events

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


async def process(world: World, rows: list[dict[Any, Any]], actor: Principal = ADMIN) -> bulk.ChunkResult:
    ctx = bulk.ImportContext(import_id="imp-1", actor=actor, settings=world.runtime.settings, clock=world.clock)
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
