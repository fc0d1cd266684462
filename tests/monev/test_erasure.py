"""A participant leaves (participant.status_changed from the registry): exit or erasure cancels the open
follow-up tasks (no monev.due or monev.overdue afterwards, no survey accepted); erasure blanks every
figure and note of the family's surveys and baseline, keeping what statistics count in aggregate."""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import select

from pena.tables import audit_log
from services.monev import queries
from services.monev.models import MonevSurvey
from tests.monev.support import WIB, announce_completions, completion, in_monev, register, scheduler, survey_body, tasks
from tests.support import outbox_names, publish, status_changed

AT = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)


async def _surveys(runtime) -> list[MonevSurvey]:
    async def read(session):
        return list((await session.execute(select(MonevSurvey).order_by(MonevSurvey.version))).scalars().all())  # type: ignore[arg-type]

    return await in_monev(runtime, read)


async def _audits(runtime, action: str) -> list:
    async def read(session):
        return list((await session.execute(select(audit_log).where(audit_log.c.action == action))).all())

    return await in_monev(runtime, read)


async def test_erasure_blanks_survey_figures_and_notes_and_keeps_the_aggregate_facts(world) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    first = await world.client.post(url, json=survey_body(notes="Ibu Siti jualan di pasar"), headers=world.facilitator)
    assert first.status_code == 201, first.text
    corrected = await world.client.post(
        url, json=survey_body(savings=300_000, correction_reason="savings recounted"), headers=world.facilitator
    )
    assert corrected.status_code == 201, corrected.text

    await publish(world.runtime, status_changed("p-1", to="erased", version=2, reason_code="erasure_requested", at=AT))

    surveys = await _surveys(world.runtime)
    assert len(surveys) == 2
    for survey in surveys:
        assert survey.erased_at is not None
        assert {name: getattr(survey, name) for name in queries.ERASED_SURVEY_COLUMNS} == dict.fromkeys(
            queries.ERASED_SURVEY_COLUMNS
        )
        # what statistics count in aggregate stays
        assert (survey.visit_date, survey.business_status, survey.business_field) == (
            date(2026, 3, 2),
            "active",
            "fashion_menjahit",
        )
        assert survey.voluntary_exit_statement is True
    baseline = await in_monev(world.runtime, lambda s: queries.baseline(s, "p-1"))
    assert baseline is not None
    assert (baseline.baseline_monthly_income, baseline.household_size) == (None, None)
    [task] = await tasks(world.runtime)
    assert task.status == "done"  # a task already done is not cancelled: it happened
    seen = await world.client.get(f"/v1/monev/tasks/{world.task_id}", headers=world.admin)
    assert seen.status_code == 200
    assert seen.json()["result"] is None
    assert "2000000" not in seen.text
    assert "pasar" not in seen.text

    # the same erasure again (a second delivery) changes nothing
    erased_at = [s.erased_at for s in surveys]
    await publish(world.runtime, status_changed("p-1", to="erased", version=2, reason_code="erasure_requested", at=AT))
    assert [s.erased_at for s in await _surveys(world.runtime)] == erased_at
    assert len(await _audits(world.runtime, "monev.survey.erased")) == 1


async def test_exit_cancels_the_open_task_and_nothing_is_announced_or_accepted_afterwards(world) -> None:
    await publish(world.runtime, status_changed("p-1", to="exited", version=2, reason_code="moved_away", at=AT))
    [task] = await tasks(world.runtime)
    assert (task.status, task.cancel_reason) == ("cancelled", "participant_exited")
    assert task.cancelled_at is not None
    listed = await world.client.get("/v1/monev/tasks?status=cancelled", headers=world.admin)
    assert listed.status_code == 200, listed.text
    assert [(t["id"], t["cancel_reason"]) for t in listed.json()["items"]] == [(world.task_id, "participant_exited")]
    # long after the grace period: the overdue job was cancelled, no announcement
    world.clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    await scheduler(world.runtime).drain()
    assert "monev.overdue" not in await outbox_names(world.runtime, "monev")
    [task] = await tasks(world.runtime)
    assert task.status == "cancelled"
    refused = await world.client.post(
        f"/v1/monev/tasks/{world.task_id}/survey", json=survey_body(), headers=world.facilitator
    )
    assert refused.status_code == 409
    assert refused.json()["type"].rsplit("/", 1)[-1] == "task_cancelled"
    assert len(await _audits(world.runtime, "monev.task.cancelled")) == 1


async def test_erasure_cancels_a_task_not_yet_due_and_its_due_job(world) -> None:
    await register(world.runtime, "p-2")
    await announce_completions(world.runtime, completion("p-2", datetime(2026, 3, 1, 10, 0, tzinfo=WIB)))
    scheduled = next(t for t in await tasks(world.runtime) if t.participant_id == "p-2")
    assert scheduled.status == "scheduled"
    await publish(world.runtime, status_changed("p-2", to="erased", version=2, reason_code="erasure_requested", at=AT))
    world.clock.set(datetime(2026, 12, 1, tzinfo=UTC))
    await scheduler(world.runtime).drain()
    after = {t.participant_id: t for t in await tasks(world.runtime)}
    assert (after["p-2"].status, after["p-2"].cancel_reason) == ("cancelled", "participant_erased")
    due = [n for n in await outbox_names(world.runtime, "monev") if n == "monev.due"]
    assert len(due) == 1  # p-1's, announced before; none for p-2
    # p-1 stays in the programme: its task went on to overdue
    assert after["p-1"].status == "overdue"
