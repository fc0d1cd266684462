"""A 2023 cohort loaded in 2026 from the files field teams fill (issue 16 item 6), across four `pena
serve` processes on Kafka: the families by the participants import, the April 2023 batch with its
sessions, enrolments, attendance and completion by the five training imports, and the July 2023 visits
by the Monev survey import. The same events flow as on the single-record paths (tests/e2e/
test_story_backfill.py): the tasks come due, graduation assesses the visits, and the statistics count
the families in `as_of=2023-07-31` (not in June 2023)."""

from __future__ import annotations

import csv
import io
from typing import Any

import httpx

from pena.imports import XLSX_MEDIA_TYPE
from tests.e2e.conftest import Deployment
from tests.e2e.story import MAN, eventually, participant_body, participants_csv, put_reference_year, tokens
from tests.e2e.test_story import settings_of
from tests.e2e.test_story_backfill import WIDOW

CENTRE = "BBPPKS-PADANG-2023"
BATCH = "PDG-2023-01"
DAYS = ("2023-04-03", "2023-04-05", "2023-04-07", "2023-04-10", "2023-04-12")
MODULES = (
    "pena_introduction",
    "motivation_work_ethic",
    "social_entrepreneurship_basics",
    "technical_skills",
    "technical_skills",
)


def csv_of(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def xlsx_of(rows: list[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.append(list(rows[0]))
    for row in rows:
        sheet.append([str(v) for v in row.values()])
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


async def test_a_2023_cohort_loaded_by_files_counts_on_its_visit_dates(four_processes: Deployment) -> None:
    settings = settings_of(four_processes)
    urls = four_processes.urls
    t = tokens(settings)
    async with httpx.AsyncClient(timeout=60) as http:

        def url(service: str, path: str) -> str:
            return urls[service] + path

        async def run_file(service: str, path: str, name: str, content: bytes) -> dict[str, Any]:
            """Uploads a file to an import route and waits for its run to finish (the service's scheduler)."""
            media = XLSX_MEDIA_TYPE if name.endswith(".xlsx") else "text/csv"
            r = await http.post(url(service, path), headers=t.admin, files={"file": (name, content, media)})
            assert r.status_code == 202, r.text
            location = url(service, r.headers["location"])

            async def finished() -> dict[str, Any] | None:
                run = (await http.get(location, headers=t.admin)).json()
                return run if run["status"] == "done" else None

            run: dict[str, Any] = await eventually(finished, f"the {name} import to finish")
            if run["error_rows"]:
                errors = (await http.get(location + "/errors", headers=t.admin)).text
                raise AssertionError(f"{name}: {errors}")
            return run

        await put_reference_year(http, urls["graduation"], t.admin, 2023, minimum_wage=2_800_000, poverty_line=380_000)

        # the families, by the participants import
        people = [WIDOW, MAN]
        run = await run_file(
            "participants",
            "/v1/participants/imports",
            "kpm.csv",
            participants_csv([participant_body(p) for p in people]),
        )
        assert run["created_rows"] == 2
        ids = []
        for person in people:
            r = await http.post(
                url("participants", "/v1/participants/lookup"), headers=t.admin, json={"nik": person["nik"]}
            )
            assert r.status_code == 200, r.text
            ids.append(r.json()["id"])

        # the April 2023 batch, by the five training imports (the centre exists)
        r = await http.post(
            url("training", "/v1/training-centres"),
            headers=t.admin,
            json={"name": "BBPPKS Padang", "code": CENTRE, "region_code": "1371"},
        )
        assert r.status_code == 201, r.text
        batch = {"centre_code": CENTRE, "batch_ref": BATCH}
        await run_file(
            "training",
            "/v1/batches/imports/batches",
            "batches.csv",
            csv_of(
                [
                    batch
                    | {
                        "name": "Angkatan 2023 Menjahit",
                        "business_field": "fashion_menjahit",
                        "method": "life_skill_training",
                        "start_date": DAYS[0],
                        "end_date": DAYS[-1],
                        "region_code": "1371011001",
                        "capacity": 25,
                        "status": "running",
                    }
                ]
            ),
        )
        await run_file(
            "training",
            "/v1/batches/imports/sessions",
            "sessions.csv",
            csv_of([batch | {"session_date": d, "module": m} for d, m in zip(DAYS, MODULES, strict=True)]),
        )
        enrolments = csv_of(
            [batch | {"participant_id": i, "exit_agreement": "yes", "enrolled_on": "2023-03-27"} for i in ids]
        )

        async def enrolled() -> bool:
            """Training enrols a family once participant.registered reached it; the file is simply sent again
            (rows already enrolled count as duplicates)."""
            r = await http.post(
                url("training", "/v1/batches/imports/enrolments"),
                headers=t.admin,
                files={"file": ("enrolments.csv", enrolments, "text/csv")},
            )
            assert r.status_code == 202, r.text

            async def finished() -> dict[str, Any] | None:
                run = (await http.get(url("training", r.headers["location"]), headers=t.admin)).json()
                return run if run["status"] == "done" else None

            run = await eventually(finished, "the enrolments import to finish")
            return bool(run["created_rows"] + run["duplicate_rows"] == len(ids))

        await eventually(enrolled, "the enrolments (once training heard of the families)")
        await run_file(
            "training",
            "/v1/batches/imports/attendance",
            "attendance.xlsx",  # a workbook, as field teams keep them
            xlsx_of([batch | {"participant_id": i, "session_date": d, "present": "yes"} for i in ids for d in DAYS]),
        )
        await run_file(
            "training",
            "/v1/batches/imports/completions",
            "completions.csv",
            csv_of([batch | {"completed_at": "2023-04-14T10:00:00+07:00"}]),
        )

        # monev: the tasks due in July 2023 come due now; the July 2023 visits, by the survey import
        async def due_tasks() -> list[dict[str, Any]] | None:
            found = []
            for participant_id in ids:
                items = (
                    await http.get(
                        url("monev", "/v1/monev/tasks"), headers=t.admin, params={"participant_id": participant_id}
                    )
                ).json()["items"]
                if not items or items[0]["status"] != "due":
                    return None
                found.append(items[0])
            return found

        tasks = await eventually(due_tasks, "the 2023 tasks to come due")
        assert all(task["due_at"].startswith("2023-07-1") for task in tasks), tasks
        visit = {
            "kind": "follow_up",
            "wave": "P3M",
            "due_month": "2023-07",
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
            "assistance_still_received": "",
            "welfare_self_assessment": 4,
            "voluntary_exit_statement": "ya",
        }
        surveys = csv_of([{"participant_id": i} | visit for i in ids])
        run = await run_file("monev", "/v1/monev/imports/surveys", "kunjungan-juli-2023.csv", surveys)
        assert run["created_rows"] == 2
        again = await run_file("monev", "/v1/monev/imports/surveys", "kunjungan-juli-2023.csv", surveys)
        assert (again["created_rows"], again["duplicate_rows"]) == (0, 2)  # sent twice, surveyed once

        # graduation assesses the 2023 visits; the statistics count them on their visit date
        stats_url = url("graduation", "/v1/graduation/statistics")

        async def ready_on(as_of: str) -> int:
            r = await http.get(stats_url, headers=t.admin, params={"as_of": as_of})
            assert r.status_code == 200, r.text
            return int(r.json()["totals"]["persons"]["ready"])

        async def counted() -> bool:
            return await ready_on("2023-07-31") == len(ids)

        await eventually(counted, "the 2023 visits counted in as_of=2023-07-31")
        assert await ready_on("2023-06-30") == 0  # before the visits
        r = await http.get(stats_url, headers=t.admin, params={"as_of": "2023-07-31"})
        assert r.json()["totals"]["kpm"]["ready"] == len(ids)  # two families
