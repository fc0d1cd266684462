"""Survey submission over HTTP on real PostgreSQL: validation with named fields and rules, not-due and
one-submission rules, corrections as new versions, measures against the baseline, monev.completed."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from pena.scheduler import Scheduler
from services.monev.models import MonevSurvey
from tests.monev.conftest import World
from tests.monev.support import WIB, announce_completions, completion, in_monev, monev, survey_body, tasks
from tests.support import audit_actions, outbox_events


def _error(response, field: str) -> dict:
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    matches = [e for e in body.get("errors") or [] if e["field"] == field]
    assert matches, body
    return matches[0]


async def test_a_survey_yields_measures_against_the_baseline_and_announces_them(world: World) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    response = await world.client.post(url, json=survey_body(), headers=world.facilitator)
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    assert response.json()["status"] == "done"
    assert result["version"] == 1
    assert result["notes"] == "visited at the stall"
    measures = result["measures"]
    assert measures == {
        "formula_version": "2026.2",
        "baseline_monthly_income": 1_000_000,
        "baseline_household_size": 4,
        "income_change": 1_000_000,
        "income_per_member": 500_000,
        "income_per_member_change": 250_000,
        # 0.5 * (4-1)/4 + 0.5 * min(500000/250000/2, 1)
        "welfare_index": 0.875,
        # 0.30 income doubled + 0.25 active + 0.20 no assistance + 0.15 savings + 0 workers
        "independence_index": 0.9,
    }

    [event] = await outbox_events(world.runtime, "monev", "monev.completed")
    data = event["data"]
    assert event["subject"] == "p-1"
    assert data["submission_version"] == 1
    assert data["indicators"]["voluntary_exit_statement"] is True
    assert data["measures"] == measures
    assert (data["batch_id"], data["centre_id"], data["business_field"], data["region_code"]) == (
        "batch-1",
        "centre-padang",
        "fashion_menjahit",
        "1371011001",
    )
    assert "visited at the stall" not in str(event)  # free-text notes never travel

    async def stored_notes(session):
        return (await session.execute(select(col(MonevSurvey.notes_encrypted)))).scalar_one()

    assert "stall" not in await in_monev(world.runtime, stored_notes)  # encrypted at rest
    assert "monev.survey.submitted" in await audit_actions(world.runtime, "monev")

    # the overdue check was cancelled: the grace period passing announces nothing
    world.clock.set(datetime(2026, 5, 1, tzinfo=UTC))
    await Scheduler(world.runtime.service("monev").db, monev.jobs, world.clock).drain()
    assert len(await outbox_events(world.runtime, "monev", "monev.overdue")) == 0


async def test_negative_money_is_refused_naming_the_field_and_rule(world: World) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    response = await world.client.post(url, json=survey_body(monthly_household_income=-5), headers=world.facilitator)
    assert response.status_code == 422
    assert _error(response, "monthly_household_income")["rule"] == "greater_than_equal"
    unknown = await world.client.post(url, json=survey_body(participant_name="x"), headers=world.facilitator)
    assert unknown.status_code == 422
    assert _error(unknown, "participant_name")["rule"] == "extra_forbidden"
    assert len(await outbox_events(world.runtime, "monev", "monev.completed")) == 0


async def test_visit_dates_before_training_or_in_the_future_are_refused(world: World) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    before = await world.client.post(url, json=survey_body(visit=date(2025, 11, 29)), headers=world.facilitator)
    assert before.status_code == 422
    assert _error(before, "visit_date")["rule"] == "visit_before_training"

    future = await world.client.post(url, json=survey_body(visit=date(2026, 3, 11)), headers=world.facilitator)
    assert future.status_code == 422
    assert _error(future, "visit_date")["rule"] == "visit_in_future"
    assert [t.status for t in await tasks(world.runtime)] == ["due"]


async def test_a_task_not_yet_due_is_refused(world: World) -> None:
    await announce_completions(
        world.runtime, completion("p-1", datetime(2026, 2, 20, 10, 0, tzinfo=WIB), batch_id="b2")
    )
    later = [t for t in await tasks(world.runtime) if t.batch_id == "b2"][0]
    response = await world.client.post(f"/v1/monev/tasks/{later.id}/survey", json=survey_body(), headers=world.admin)
    assert response.status_code == 409
    assert response.json()["type"].endswith("/task_not_due")


async def test_a_second_submission_needs_a_correction_reason_and_becomes_a_new_version(world: World) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    assert (await world.client.post(url, json=survey_body(), headers=world.facilitator)).status_code == 201

    again = await world.client.post(url, json=survey_body(savings=0), headers=world.facilitator)
    assert again.status_code == 409
    assert again.json()["type"].endswith("/correction_reason_required")
    assert len(await outbox_events(world.runtime, "monev", "monev.completed")) == 1

    corrected = await world.client.post(
        url,
        json=survey_body(savings=0, correction_reason="savings were the group's, not the family's"),
        headers=world.facilitator,
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["submission_version"] == 2
    assert corrected.json()["result"]["measures"]["independence_index"] == 0.75  # savings component gone
    versions = [e["data"]["submission_version"] for e in await outbox_events(world.runtime, "monev", "monev.completed")]
    assert versions == [1, 2]

    history = await world.client.get(f"/v1/monev/tasks/{world.task_id}/surveys", headers=world.admin)
    assert [s["version"] for s in history.json()] == [1, 2]
    assert history.json()[0]["indicators"]["savings"] == 250_000  # the first version is kept
    assert history.json()[1]["correction_reason"].startswith("savings were")
    actions = await audit_actions(world.runtime, "monev")
    assert "monev.survey.corrected" in actions
    assert "monev.survey.read" in actions


async def test_an_idempotent_retry_returns_the_first_answer(world: World) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    headers = {**world.facilitator, "Idempotency-Key": "visit-p1-1"}
    first = await world.client.post(url, json=survey_body(), headers=headers)
    retry = await world.client.post(url, json=survey_body(), headers=headers)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert len(await outbox_events(world.runtime, "monev", "monev.completed")) == 1


async def test_without_a_baseline_the_indices_use_what_is_known(world: World) -> None:
    await announce_completions(
        world.runtime, completion("p-unknown", datetime(2025, 11, 30, 10, 0, tzinfo=WIB), region_code="3201011001")
    )
    task = [t for t in await tasks(world.runtime) if t.participant_id == "p-unknown"][0]
    response = await world.client.post(
        f"/v1/monev/tasks/{task.id}/survey",
        json=survey_body(assistance_still_received=["PKH"], welfare_self_assessment=3),
        headers=world.admin,
    )
    assert response.status_code == 201, response.text
    measures = response.json()["result"]["measures"]
    assert measures["income_change"] is None
    assert measures["income_per_member_change"] is None
    assert measures["welfare_index"] == 0.5  # self assessment only
    # formula 2026.2: PKH still received before the exit decision is not dependence, so
    # (0.25 active + 0.20 no dependence + 0.15 savings) / 0.70 of the weights that could be computed
    assert measures["formula_version"] == "2026.2"
    assert measures["independence_index"] == round(0.60 / 0.70, 4)
    assert response.json()["due_at"] < (world.clock.now() + timedelta(days=1)).isoformat()
