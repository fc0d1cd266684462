"""The visit-date rule and the formula versions on a real PostgreSQL: a visit before the task's due date
needs early_reason and is stored and announced as early; results keep the formula version they were
computed with (2026.1 results stay 2026.1 next to new 2026.2 ones, also across a correction)."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select
from sqlmodel import col

from pena.clock import business_date
from services.monev import measures
from services.monev.models import MonevSurvey
from tests.monev.conftest import World
from tests.monev.support import in_monev, survey_body, tasks
from tests.support import audit_rows, outbox_events


async def _due_on(world: World) -> date:
    [task] = await tasks(world.runtime)
    return business_date(task.due_at, "Asia/Jakarta")


async def test_a_visit_before_the_due_date_needs_a_reason(world: World) -> None:
    due_on = await _due_on(world)
    early_visit = date(due_on.year, due_on.month, 1) if due_on.day > 1 else date(2026, 1, 15)
    assert early_visit < due_on
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    refused = await world.client.post(url, json=survey_body(visit=early_visit), headers=world.facilitator)
    assert refused.status_code == 422
    assert refused.headers["content-type"].startswith("application/problem+json")
    [error] = refused.json()["errors"]
    assert (error["field"], error["rule"]) == ("early_reason", "required_for_early_visit")
    assert due_on.isoformat() in error["message"]
    assert [t.status for t in await tasks(world.runtime)] == ["due"]
    assert await outbox_events(world.runtime, "monev", "monev.completed") == []

    accepted = await world.client.post(
        url,
        json=survey_body(visit=early_visit, early_reason="family leaves for the harvest season"),
        headers=world.facilitator,
    )
    assert accepted.status_code == 201, accepted.text
    result = accepted.json()["result"]
    assert (result["visit_date"], result["early"]) == (early_visit.isoformat(), True)
    assert result["early_reason"] == "family leaves for the harvest season"
    [event] = await outbox_events(world.runtime, "monev", "monev.completed")
    assert (event["data"]["visit_date"], event["data"]["early"]) == (early_visit.isoformat(), True)
    assert "harvest" not in str(event)  # the free-text reason never travels

    async def stored(session):
        return (await session.execute(select(col(MonevSurvey.early), col(MonevSurvey.early_reason_encrypted)))).one()

    early, reason_at_rest = await in_monev(world.runtime, stored)
    assert early is True
    assert reason_at_rest is not None
    assert "harvest" not in reason_at_rest  # encrypted like the notes
    [audit] = await audit_rows(world.runtime, "monev", "monev.survey.submitted")
    assert audit.details["early"] is True


async def test_a_visit_on_the_due_date_is_not_early_and_needs_no_reason(world: World) -> None:
    due_on = await _due_on(world)
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    response = await world.client.post(url, json=survey_body(visit=due_on), headers=world.facilitator)
    assert response.status_code == 201, response.text
    assert (response.json()["result"]["early"], response.json()["result"]["early_reason"]) == (False, None)
    [event] = await outbox_events(world.runtime, "monev", "monev.completed")
    assert event["data"]["early"] is False


async def test_an_unknown_business_field_is_refused_by_the_taxonomy_rule(world: World) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    refused = await world.client.post(url, json=survey_body(business_field="astrologi"), headers=world.facilitator)
    assert refused.status_code == 422
    assert [(e["field"], e["rule"]) for e in refused.json()["errors"]] == [("business_field", "unknown_business_field")]
    sub_field = await world.client.post(url, json=survey_body(business_field="konveksi"), headers=world.facilitator)
    assert sub_field.status_code == 201, sub_field.text  # a sub-field of fashion_menjahit


async def test_earlier_results_keep_formula_version_1(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"/v1/monev/tasks/{world.task_id}/survey"
    pkh = survey_body(assistance_still_received=["PKH"])
    monkeypatch.setattr(measures, "FORMULA_VERSION", "2026.1")  # the release before formula 2026.2
    old = await world.client.post(url, json=pkh, headers=world.facilitator)
    assert old.status_code == 201, old.text
    monkeypatch.undo()  # this release
    corrected = await world.client.post(
        url, json=pkh | {"correction_reason": "re-entered after the upgrade"}, headers=world.facilitator
    )
    assert corrected.status_code == 201, corrected.text

    history = await world.client.get(f"/v1/monev/tasks/{world.task_id}/surveys", headers=world.admin)
    first, second = (s["measures"] for s in history.json())
    # 2026.1: PKH still received counts as dependence; doubled income 0.30 + active 0.25 + savings 0.15
    assert (first["formula_version"], first["independence_index"]) == ("2026.1", 0.7)
    # 2026.2: PKH before the exit decision is not dependence: + 0.20
    assert (second["formula_version"], second["independence_index"]) == ("2026.2", 0.9)
    events = await outbox_events(world.runtime, "monev", "monev.completed")
    assert [e["data"]["measures"]["formula_version"] for e in events] == ["2026.1", "2026.2"]

    async def versions(session):
        query = select(col(MonevSurvey.version), col(MonevSurvey.formula_version)).order_by(col(MonevSurvey.version))
        return [tuple(r) for r in (await session.execute(query)).all()]

    assert await in_monev(world.runtime, versions) == [(1, "2026.1"), (2, "2026.2")]
