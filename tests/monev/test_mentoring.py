"""Mentoring after graduation on real PostgreSQL (issue 14 item 5): graduation.decided schedules one
task of kind mentoring per offset it carries, through the follow-up machinery (region assignment, due
jobs and events, the survey endpoint, monev.completed with the kind); a redelivered decision changes
nothing; a reversal on appeal cancels the mentoring tasks not done yet."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import httpx
import pytest

from pena.clock import ManualClock
from pena.contracts import GraduationDecided
from pena.contracts.monev import MonevIndicators
from pena.runtime import Runtime
from services.monev import measures
from services.monev import queries as monev_queries
from tests.monev.support import (
    WIB,
    announce_completions,
    completion,
    in_monev,
    monev,
    register,
    scheduler,
    survey_body,
    tasks,
)
from tests.support import (
    Announcement,
    audit_actions,
    graduation_publisher,
    outbox_data,
    participants_publisher,
    publish,
    training_publisher,
)


@dataclass
class Graduated:
    runtime: Runtime
    client: httpx.AsyncClient
    clock: ManualClock
    facilitator: dict[str, str]
    follow_up_id: str


@pytest.fixture
async def graduated(make_runtime: Any, api: Any, auth: Any) -> AsyncIterator[Graduated]:
    """p-1 in Padang, trained until 30 November 2025, surveyed on the three-month follow-up by fac-1."""
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, graduation_publisher, monev], clock=clock)
    async with api(runtime) as client:
        covered = await client.post(
            "/v1/monev/facilitators", json={"subject": "fac-1", "region_prefix": "1371"}, headers=auth("admin")
        )
        assert covered.status_code == 201, covered.text
        await register(runtime, "p-1", income=1_000_000, household_size=4)
        await announce_completions(runtime, completion("p-1", datetime(2025, 11, 30, 10, 0, tzinfo=WIB)))
        clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
        assert await scheduler(runtime).drain() == 1
        [task] = await tasks(runtime)
        facilitator = auth("facilitator", sub="fac-1")
        surveyed = await client.post(f"/v1/monev/tasks/{task.id}/survey", json=survey_body(), headers=facilitator)
        assert surveyed.status_code == 201, surveyed.text
        clock.set(datetime(2026, 3, 20, 10, 0, tzinfo=WIB))
        yield Graduated(runtime, client, clock, facilitator, task.id)


def decided(
    outcome: str = "approved",
    *,
    decision_id: str = "d-1",
    follow_ups: list[str] | None = None,
    supersedes: str | None = None,
) -> GraduationDecided:
    graduated = outcome == "approved"
    return GraduationDecided(
        decision_id=decision_id,
        participant_id="p-1",
        assessment_id="a-1",
        outcome=outcome,  # type: ignore[arg-type]
        graduated=graduated,
        kind="sejahtera_mandiri" if graduated else None,
        effective_date=date(2026, 3, 20) if graduated else None,
        mentoring_follow_ups=(["P6M", "P12M"] if follow_ups is None else follow_ups) if graduated else [],
        supersedes_decision_id=supersedes,
        decided_at=datetime(2026, 3, 20, 3, 0, tzinfo=UTC),
    )


async def announce(env: Graduated, decision: GraduationDecided) -> None:
    await publish(env.runtime, Announcement("graduation.decided", decision, decision.participant_id, env.clock.now()))


async def test_a_graduation_schedules_two_mentoring_tasks_once(graduated: Graduated) -> None:
    await announce(graduated, decided())
    await announce(graduated, decided())  # re-announced (a new event id): the (decision, wave) index holds

    mentoring = [t for t in await tasks(graduated.runtime) if t.kind == "mentoring"]
    assert [(t.wave, t.due_at.astimezone(WIB)) for t in mentoring] == [
        ("P6M", datetime(2026, 9, 20, 0, 0, tzinfo=WIB)),
        ("P12M", datetime(2027, 3, 20, 0, 0, tzinfo=WIB)),
    ]
    for task in mentoring:
        # ordinary tasks: the same training, village and region assignment as the follow-up
        assert (task.decision_id, task.status, task.assignee) == ("d-1", "scheduled", "fac-1")
        assert (task.batch_id, task.centre_id, task.region_code) == ("batch-1", "centre-padang", "1371011001")
    scheduled = await outbox_data(graduated.runtime, "monev", "monev.scheduled")
    assert [(e["kind"], e["wave"]) for e in scheduled] == [
        ("follow_up", "P3M"),
        ("mentoring", "P6M"),
        ("mentoring", "P12M"),
    ]

    listed = await graduated.client.get("/v1/monev/tasks", params={"kind": "mentoring"}, headers=graduated.facilitator)
    assert listed.status_code == 200, listed.text
    assert [(t["kind"], t["wave"], t["decision_id"]) for t in listed.json()["items"]] == [
        ("mentoring", "P6M", "d-1"),
        ("mentoring", "P12M", "d-1"),
    ]
    follow_ups = await graduated.client.get(
        "/v1/monev/tasks", params={"kind": "follow_up"}, headers=graduated.facilitator
    )
    assert [t["id"] for t in follow_ups.json()["items"]] == [graduated.follow_up_id]


async def test_a_mentoring_visit_comes_due_and_is_surveyed_like_any_task(graduated: Graduated) -> None:
    await announce(graduated, decided())
    graduated.clock.set(datetime(2026, 9, 21, 9, 0, tzinfo=WIB))
    assert await scheduler(graduated.runtime).drain() == 1  # only the six-month visit is due
    due = (await outbox_data(graduated.runtime, "monev", "monev.due"))[-1]
    assert (due["kind"], due["wave"]) == ("mentoring", "P6M")

    six = next(t for t in await tasks(graduated.runtime) if t.wave == "P6M")
    answer = await graduated.client.post(
        f"/v1/monev/tasks/{six.id}/survey",
        json=survey_body(date(2026, 9, 21), monthly_household_income=1_200_000, assistance_still_received=["PKH"]),
        headers=graduated.facilitator,
    )
    assert answer.status_code == 201, answer.text
    assert (answer.json()["status"], answer.json()["kind"]) == ("done", "mentoring")
    completed = (await outbox_data(graduated.runtime, "monev", "monev.completed"))[-1]
    assert (completed["task_id"], completed["kind"], completed["decision_id"], completed["wave"]) == (
        six.id,
        "mentoring",
        "d-1",
        "P6M",
    )
    assert completed["indicators"]["monthly_household_income"] == 1_200_000
    # after the exit decision, PKH still received is dependence (formula 2026.2); a follow-up before
    # the decision would not count it
    indicators = MonevIndicators.model_validate(completed["indicators"])
    known = await in_monev(graduated.runtime, lambda session: monev_queries.baseline(session, "p-1"))
    assert known is not None

    def scored(exit_decided: bool) -> float:
        baseline = measures.Baseline(known.baseline_monthly_income, known.household_size, exit_decided=exit_decided)
        return measures.compute(indicators, baseline).independence_index

    assert completed["measures"]["formula_version"] == "2026.2"
    assert completed["measures"]["independence_index"] == scored(True) < scored(False)


async def test_a_reversal_cancels_the_mentoring_tasks_not_done(graduated: Graduated) -> None:
    await announce(graduated, decided())
    graduated.clock.set(datetime(2026, 9, 21, 9, 0, tzinfo=WIB))
    assert await scheduler(graduated.runtime).drain() == 1
    six = next(t for t in await tasks(graduated.runtime) if t.wave == "P6M")
    done = await graduated.client.post(
        f"/v1/monev/tasks/{six.id}/survey", json=survey_body(date(2026, 9, 21)), headers=graduated.facilitator
    )
    assert done.status_code == 201, done.text

    await announce(graduated, decided("reversed", decision_id="d-2", supersedes="d-1"))
    status = {t.wave: t.status for t in await tasks(graduated.runtime)}
    assert status == {"P3M": "done", "P6M": "done", "P12M": "cancelled"}
    assert (await audit_actions(graduated.runtime, "monev")).count("monev.task.cancelled") == 1

    # its due job was cancelled with it: nothing comes due, and no survey is taken
    graduated.clock.set(datetime(2027, 3, 21, 9, 0, tzinfo=WIB))
    assert await scheduler(graduated.runtime).drain() == 0
    twelve = next(t for t in await tasks(graduated.runtime) if t.wave == "P12M")
    refused = await graduated.client.post(
        f"/v1/monev/tasks/{twelve.id}/survey", json=survey_body(date(2027, 3, 21)), headers=graduated.facilitator
    )
    assert refused.status_code == 409, refused.text
    assert refused.json()["type"].endswith("task_cancelled")
    assert [e["wave"] for e in await outbox_data(graduated.runtime, "monev", "monev.due")] == ["P3M", "P6M"]


async def test_no_mentoring_without_a_graduation_or_without_offsets(graduated: Graduated) -> None:
    await announce(graduated, decided("rejected", decision_id="d-rejected"))
    await announce(graduated, decided("deferred", decision_id="d-deferred"))
    await announce(graduated, decided(decision_id="d-none", follow_ups=[]))  # a policy with no mentoring visits
    assert [t.kind for t in await tasks(graduated.runtime)] == ["follow_up"]
