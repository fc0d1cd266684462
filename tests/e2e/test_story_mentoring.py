"""Mentoring that happens (issue 14 item 5), across four `pena serve` processes on Kafka: the story's
graduation schedules two mentoring visits in monev (6 and 12 months after the effective date, the
seeded policy's offsets); the six-month visit comes due on the monev clock, the facilitator surveys it
through the same endpoint, and an income per person below the poverty line comes back to graduation
as a relapse case the case workers list."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
from dateutil.relativedelta import relativedelta

from tests.e2e.conftest import Deployment
from tests.e2e.story import eventually, run_story, tokens
from tests.e2e.test_story import assert_no_identity_in, settings_of


async def test_a_graduation_leads_to_mentoring_visits_and_a_flagged_relapse(four_processes: Deployment) -> None:
    settings = settings_of(four_processes)
    urls = four_processes.urls
    outcome = await run_story(urls, settings)
    woman_id, decision = outcome["woman_id"], outcome["decision"]
    assert decision["mentoring_follow_ups"] == ["P6M", "P12M"]
    effective = date.fromisoformat(decision["effective_date"])
    t = tokens(settings)
    async with httpx.AsyncClient(timeout=30) as http:

        async def mentoring_tasks() -> list[dict[str, Any]] | None:
            answer = await http.get(
                urls["monev"] + "/v1/monev/tasks",
                headers=t.admin,
                params={"participant_id": woman_id, "kind": "mentoring"},
            )
            items = answer.json()["items"]
            return items if len(items) == 2 else None

        tasks = await eventually(mentoring_tasks, "two mentoring tasks in monev")
        assert [(m["wave"], m["decision_id"], m["status"]) for m in tasks] == [
            ("P6M", decision["id"], "scheduled"),
            ("P12M", decision["id"], "scheduled"),
        ]
        assert [m["due_at"][:10] for m in tasks] == [
            str(effective + relativedelta(months=6) - timedelta(days=1)),  # 00:00 WIB is the evening before in UTC
            str(effective + relativedelta(months=12) - timedelta(days=1)),
        ]

        # the monev clock moves two days past the six-month visit
        visit = effective + relativedelta(months=6) + timedelta(days=2)
        offset_days = (visit - datetime.now(UTC).date()).days
        r = await http.put(urls["monev"] + "/v1/ops/clock", headers=t.admin, json={"offset": f"P{offset_days}D"})
        assert r.status_code == 200, r.text
        visit = date.fromisoformat(r.json()["now"][:10])
        # the poverty line of the visit year (the story loads this year's and last year's)
        r = await http.put(
            urls["graduation"] + "/v1/graduation/reference/poverty-lines",
            headers=t.admin,
            json=[{"year": visit.year, "amount": 400_000, "source": "e2e example", "is_example": True}],
        )
        assert r.status_code == 200, r.text
        six = tasks[0]

        async def six_due() -> bool:
            r = await http.get(urls["monev"] + f"/v1/monev/tasks/{six['id']}", headers=t.admin)
            return r.json()["status"] == "due"

        await eventually(six_due, "the six-month mentoring visit to come due")
        r = await http.post(
            urls["monev"] + f"/v1/monev/tasks/{six['id']}/assignment", headers=t.admin, json={"facilitator": "fac-1"}
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            urls["monev"] + f"/v1/monev/tasks/{six['id']}/survey",
            headers=t.facilitator,
            json={
                "visit_date": str(visit),
                "respondent": "participant",
                "business_status": "paused",
                "business_field": "fashion_menjahit",
                "monthly_revenue": 900_000,
                "monthly_household_income": 1_200_000,
                "household_size": 4,
                "workers_employed": 0,
                "business_assets": 2_000_000,
                "savings": 0,
                "assistance_still_received": [],
                "welfare_self_assessment": 2,
                "voluntary_exit_statement": False,
                "notes": "usaha berhenti sementara",
            },
        )
        assert r.status_code == 201, r.text
        assert r.json()["kind"] == "mentoring"

        async def relapse() -> dict[str, Any] | None:
            r = await http.get(
                urls["graduation"] + "/v1/graduation/relapses",
                headers=t.verifier,
                params={"participant_id": woman_id},
            )
            items = r.json()["items"]
            return items[0] if items else None

        case = await eventually(relapse, "the relapse case in graduation")
        assert (case["decision_id"], case["monev_task_id"], case["wave"], case["status"]) == (
            decision["id"],
            six["id"],
            "P6M",
            "open",
        )
        assert (case["income_per_member"], case["poverty_line"], case["poverty_line_year"]) == (
            300_000,
            400_000,
            visit.year,
        )
        # the mentoring visit did not become a readiness assessment
        r = await http.get(
            urls["graduation"] + "/v1/graduation/assessments", headers=t.admin, params={"participant_id": woman_id}
        )
        assert len(r.json()["items"]) == 1
    assert_no_identity_in(four_processes.log_text())
