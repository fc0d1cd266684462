"""A 2023 cohort loaded in 2026, across four `pena serve` processes on Kafka (issue 14, statistics on
valid time): a batch that ran in April 2023 is recorded with its sessions and attendance and closed
with its 2023 completion date; its three-month Monev task (due July 2023) comes due at once, the July
2023 visit is entered, graduation assesses it, and the statistics count the family in
`as_of=2023-07-31` (not in June 2023), as the ministry's published figures did."""

from __future__ import annotations

from typing import Any

import httpx

from tests.e2e.conftest import Deployment
from tests.e2e.story import eventually, participant_body, put_reference_year, tokens
from tests.e2e.test_story import settings_of

WIDOW = {  # a family of Kota Padang, trained in 2023
    "nik": "1371016203800004",
    "kk_number": "1371012203120004",
    "full_name": "Rosmawati",
    "birth_date": "1980-03-22",
    "sex": "F",
}


async def test_a_2023_cohort_loaded_now_counts_on_its_visit_date(four_processes: Deployment) -> None:
    settings = settings_of(four_processes)
    urls = four_processes.urls
    t = tokens(settings)
    async with httpx.AsyncClient(timeout=30) as http:

        def url(service: str, path: str) -> str:
            return urls[service] + path

        # the 2023 reference data the graduation policy reads for a 2023 visit
        await put_reference_year(http, urls["graduation"], t.admin, 2023, minimum_wage=2_800_000, poverty_line=380_000)

        r = await http.post(url("participants", "/v1/participants"), headers=t.admin, json=participant_body(WIDOW))
        assert r.status_code == 201, r.text
        participant_id = r.json()["id"]

        # the April 2023 batch, recorded now with its sessions, attendance and completion date
        r = await http.post(
            url("training", "/v1/training-centres"),
            headers=t.admin,
            json={"name": "BBPPKS Padang", "code": "BBPPKS-PADANG-2023", "region_code": "1371"},
        )
        assert r.status_code == 201, r.text
        sessions = [
            {"date": day, "module": module}
            for day, module in [
                ("2023-04-03", "pena_introduction"),
                ("2023-04-05", "motivation_work_ethic"),
                ("2023-04-07", "social_entrepreneurship_basics"),
                ("2023-04-10", "technical_skills"),
                ("2023-04-12", "technical_skills"),
            ]
        ]
        r = await http.post(
            url("training", "/v1/batches"),
            headers=t.admin,
            json={
                "centre_id": r.json()["id"],
                "name": "Angkatan 2023 Menjahit",
                "business_field": "fashion_menjahit",
                "method": "life_skill_training",
                "start_date": "2023-04-03",
                "end_date": "2023-04-12",
                "sessions": sessions,
                "region_code": "1371011001",
                "capacity": 25,
            },
        )
        assert r.status_code == 201, r.text
        batch_url = url("training", f"/v1/batches/{r.json()['id']}")
        assert (await http.post(batch_url + "/status", headers=t.admin, json={"status": "open"})).status_code == 200

        async def enrolled() -> bool:
            r = await http.post(
                batch_url + "/enrolments",
                headers=t.admin,
                json={"participant_id": participant_id, "exit_agreement": True},
            )
            return r.status_code == 201

        await eventually(enrolled, "the enrolment (once training heard of the participant)")
        assert (await http.post(batch_url + "/status", headers=t.admin, json={"status": "running"})).status_code == 200
        for session in (await http.get(batch_url, headers=t.admin)).json()["sessions"]:
            r = await http.post(
                batch_url + "/attendance",
                headers=t.admin,
                json={"session_id": session["id"], "present": [participant_id]},
            )
            assert r.status_code in (200, 201), r.text
        r = await http.post(batch_url + "/close", headers=t.admin, json={"completed_at": "2023-04-14T10:00:00+07:00"})
        assert r.status_code == 200, r.text

        # monev: the task due in July 2023 comes due now; the July 2023 visit is entered
        async def due_task() -> dict[str, Any] | None:
            items = (
                await http.get(
                    url("monev", "/v1/monev/tasks"), headers=t.admin, params={"participant_id": participant_id}
                )
            ).json()["items"]
            return items[0] if items and items[0]["status"] == "due" else None

        task = await eventually(due_task, "the 2023 task to come due")
        assert task["due_at"].startswith("2023-07-1"), task
        r = await http.post(
            url("monev", f"/v1/monev/tasks/{task['id']}/assignment"), headers=t.admin, json={"facilitator": "fac-1"}
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            url("monev", f"/v1/monev/tasks/{task['id']}/survey"),
            headers=t.facilitator,
            json={
                "visit_date": "2023-07-20",
                "respondent": "participant",
                "business_status": "active",
                "business_field": "fashion_menjahit",
                "monthly_revenue": 5_500_000,
                "monthly_household_income": 4_000_000,
                "household_size": 4,
                "workers_employed": 1,
                "business_assets": 7_000_000,
                "savings": 900_000,
                "assistance_still_received": [],
                "welfare_self_assessment": 4,
                "voluntary_exit_statement": True,
            },
        )
        assert r.status_code == 201, r.text

        # graduation assesses the 2023 visit; the statistics count it on its visit date
        stats_url = url("graduation", "/v1/graduation/statistics")

        async def ready_on(as_of: str) -> int:
            r = await http.get(stats_url, headers=t.admin, params={"as_of": as_of})
            assert r.status_code == 200, r.text
            return int(r.json()["totals"]["persons"]["ready"])

        async def counted() -> bool:
            return await ready_on("2023-07-31") == 1

        await eventually(counted, "the 2023 visit counted in as_of=2023-07-31")
        assert await ready_on("2023-06-30") == 0  # before the visit
        r = await http.get(stats_url, headers=t.admin, params={"as_of": "2023-07-31"})
        assert r.json()["totals"]["kpm"]["ready"] == 1  # one family (KPM), one person
