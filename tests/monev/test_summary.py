"""The programme summary, aggregated in PostgreSQL: completion of due tasks, income change quartiles,
share of businesses still active, by centre, training year or region."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import openpyxl

from pena.clock import ManualClock
from pena.contracts.participants import ParticipantUpdated
from pena.http.tabular import XLSX_MEDIA_TYPE
from tests.monev.support import WIB, announce_completions, completion, monev, register, scheduler, survey_body, tasks
from tests.support import Announcement, audit_rows, participants_publisher, publish, training_publisher


def same_family(participant_id: str, household_id: str) -> Announcement:
    at = datetime(2025, 10, 2, tzinfo=UTC)
    payload = ParticipantUpdated(
        participant_id=participant_id,
        version=2,
        changed_fields=["household_id"],
        updated_at=at,
        region_code="1371011001",
        household_size=4,
        baseline_monthly_income=1_000_000,
        status="active",
        household_id=household_id,
    )
    return Announcement("participant.updated", payload, participant_id, at)


async def _five_follow_ups(runtime: Any, client: Any, auth: Any, clock: ManualClock) -> None:
    """Centre A: three tasks due, two surveyed; centre B: one due and surveyed, one due in May."""
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


async def test_summary_by_centre_year_and_province(make_runtime, api, auth) -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    admin = auth("admin")
    async with api(runtime) as client:
        await _five_follow_ups(runtime, client, auth, clock)
        # p-a1 and p-a2 turn out to be one family (KPM): the registry links them to one household
        await publish(runtime, *(same_family(pid, "hh-a") for pid in ("p-a1", "p-a2")))
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
        assert (a["persons"], a["kpm"], b["persons"], b["kpm"]) == (3, 2, 2, 2)

        by_year = await client.get("/v1/monev/summary", params={"group_by": "training_year"}, headers=admin)
        assert {g["group"]: g["tasks_total"] for g in by_year.json()["groups"]} == {"2025": 4, "2026": 1}

        by_province = await client.get("/v1/monev/summary", params={"group_by": "province"}, headers=admin)
        province = {g["group"]: g for g in by_province.json()["groups"]}
        assert province["13"]["tasks_done"] == 3
        assert province["13"]["name"] == "Sumatera Barat"
        assert province["13"]["surveyed"] == 3
        assert (province["13"]["persons"], province["13"]["kpm"]) == (4, 3)  # p-a3, p-b1: families of their own
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


async def test_summary_exports_suppress_small_groups_and_their_figures(make_runtime, api, auth, settings) -> None:
    """With PENA_MIN_CELL_SIZE=2: centre B's one due task, its completion rate, its one survey and every
    figure of that survey are left empty and named; centre A's figures (3 tasks, 2 surveys) are shown."""
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime(
        [training_publisher, participants_publisher, monev],
        clock=clock,
        settings_=settings.model_copy(update={"min_cell_size": 2}),
    )
    async with api(runtime) as client:
        await _five_follow_ups(runtime, client, auth, clock)
        verifier = auth("verifier", unit="national")
        answer = await client.get(
            "/v1/monev/summary", params={"group_by": "centre"}, headers=verifier | {"Accept": "text/csv"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "text/csv; charset=utf-8"
        rows = {r["group"]: r for r in csv.DictReader(io.StringIO(answer.text))}
        a, b = rows["A"], rows["B"]
        assert (a["tasks_total"], a["tasks_due"], a["surveyed"], a["completion_rate"]) == ("3", "3", "2", "0.6667")
        assert a["income_change_median"] == "750000.0"
        assert a["suppressed"] == ""
        assert (b["tasks_total"], b["tasks_due"], b["completion_rate"], b["surveyed"]) == ("2", "", "", "")
        assert b["income_change_median"] == b["business_active_share"] == b["welfare_index_mean"] == ""
        assert (a["persons"], a["kpm"], b["persons"], b["kpm"]) == ("3", "3", "2", "2")
        assert b["suppressed"].split(";") == [
            "tasks_due",
            "tasks_done",
            "completion_rate",
            "surveyed",
            "income_change_q1",
            "income_change_median",
            "income_change_q3",
            "business_active_share",
            "welfare_index_mean",
            "independence_index_mean",
        ]

        workbook = await client.get(
            "/v1/monev/summary", params={"group_by": "regency"}, headers=verifier | {"Accept": XLSX_MEDIA_TYPE}
        )
        assert workbook.status_code == 200, workbook.text
        sheet = openpyxl.load_workbook(io.BytesIO(workbook.content), read_only=True).active
        assert sheet is not None
        header, *lines = [list(r) for r in sheet.iter_rows(values_only=True)]
        regencies = {line[0]: dict(zip(header, line, strict=True)) for line in lines}
        assert regencies["1371"]["name"] == "Kota Padang"
        assert regencies["1371"]["tasks_total"] == 4
        assert regencies["3273"]["name"] == "Kota Bandung"
        assert regencies["3273"]["tasks_total"] is None  # one task: below 2
        assert regencies["3273"]["tasks_due"] == 0  # zeros disclose no one: shown
        assert regencies["3273"]["suppressed"] == "tasks_total;persons;kpm"
    exports = await audit_rows(runtime, "monev", "monev.summary.export")
    assert [r.details["format"] for r in exports] == ["csv", "xlsx"]
