"""The programme summary, aggregated in PostgreSQL: completion of due tasks, income change quartiles,
share of businesses still active, by centre, training year or region."""

from __future__ import annotations

from datetime import UTC, datetime

from pena.clock import ManualClock
from tests.monev.support import WIB, announce_completions, completion, monev, register, scheduler, survey_body, tasks
from tests.support import participants_publisher, training_publisher


async def test_summary_by_centre_year_and_province(make_runtime, api, auth) -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    admin = auth("admin")
    nov = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)
    for pid in ("p-a1", "p-a2", "p-a3", "p-b1", "p-b2"):
        await register(
            runtime,
            pid,
            income=1_000_000,
            household_size=4,
            region_code="3273011001" if pid == "p-b2" else "1371011001",
        )
    await announce_completions(
        runtime,
        completion("p-a1", nov, centre_id="A"),
        completion("p-a2", nov, centre_id="A"),
        completion("p-a3", nov, centre_id="A"),
        completion("p-b1", nov, centre_id="B"),
        completion("p-b2", datetime(2026, 2, 1, 10, 0, tzinfo=WIB), centre_id="B"),  # due in May
    )
    clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
    await scheduler(runtime).drain()
    ids = {t.participant_id: t.id for t in await tasks(runtime)}
    async with api(runtime) as client:
        for pid, income, status in (
            ("p-a1", 2_000_000, "active"),
            ("p-a2", 1_500_000, "closed"),
            ("p-b1", 800_000, "active"),
        ):
            response = await client.post(
                f"/v1/monev/tasks/{ids[pid]}/survey",
                json=survey_body(monthly_household_income=income, business_status=status),
                headers=admin,
            )
            assert response.status_code == 201, response.text

        by_centre = await client.get(
            "/v1/monev/summary", params={"group_by": "centre"}, headers=auth("verifier", unit="national")
        )
        assert by_centre.status_code == 200, by_centre.text
        groups = {g["group"]: g for g in by_centre.json()["groups"]}
        assert by_centre.json()["formula_version"] == "2026.2"
        a, b = groups["A"], groups["B"]
        assert (a["tasks_total"], a["tasks_due"], a["tasks_done"], a["completion_rate"]) == (3, 3, 2, 0.6667)
        assert a["income_change"] == {"q1": 625_000.0, "median": 750_000.0, "q3": 875_000.0}
        assert a["business_active_share"] == 0.5
        assert (b["tasks_total"], b["tasks_due"], b["tasks_done"], b["completion_rate"]) == (2, 1, 1, 1.0)
        assert b["income_change"]["median"] == -200_000.0
        assert b["business_active_share"] == 1.0

        by_year = await client.get("/v1/monev/summary", params={"group_by": "training_year"}, headers=admin)
        assert {g["group"]: g["tasks_total"] for g in by_year.json()["groups"]} == {"2025": 4, "2026": 1}

        by_province = await client.get("/v1/monev/summary", params={"group_by": "province"}, headers=admin)
        province = {g["group"]: g for g in by_province.json()["groups"]}
        assert province["13"]["tasks_done"] == 3
        assert province["32"]["tasks_due"] == 0
        assert province["32"]["completion_rate"] is None
        assert province["32"]["income_change"]["median"] is None

        west_java = await client.get(
            "/v1/monev/summary", params={"group_by": "regency", "region_prefix": "32"}, headers=admin
        )
        assert [g["group"] for g in west_java.json()["groups"]] == ["3273"]

        bad = await client.get("/v1/monev/summary", params={"group_by": "nik"}, headers=admin)
        assert bad.status_code == 422
        assert bad.json()["errors"][0]["field"] == "group_by"
