"""The programme's whole story, driven through HTTP only, against any deployment (four processes on
Kafka, or `pena dev`): register -> enrol -> attend -> close -> Monev due 3 months on -> survey ->
assessment -> four-eyes approval -> the registry shows the family graduated."""

from __future__ import annotations

import csv
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx

from pena.auth import issue_dev_token
from pena.settings import Settings
from tests import support

# Kota Padang (13.71), a village in Kecamatan Padang Barat; the NIK's birth part agrees with birth dates.
VILLAGE = "1371011001"
WOMAN = {
    "nik": "1371014508900001",
    "kk_number": "1371010101150001",
    "full_name": "Siti Rahmah",
    "birth_date": "1990-08-05",
    "sex": "F",
}
# a family in Papua (Gurabesi, Kota Jayapura): the registry refused every Papuan region before the full
# Kemendagri list (issue 14)
PAPUA = {
    "nik": "9171014107880003",
    "kk_number": "9171010101200003",
    "full_name": "Yohana Wenda",
    "birth_date": "1988-07-01",
    "sex": "F",
}
MAN = {
    "nik": "1371010306850002",
    "kk_number": "1371010101150002",
    "full_name": "Budi Santoso",
    "birth_date": "1985-06-03",
    "sex": "M",
}


@dataclass
class Tokens:
    admin: dict[str, str]
    operator: dict[str, str]
    facilitator: dict[str, str]
    verifier: dict[str, str]
    approver: dict[str, str]


def tokens(settings: Settings, centre_id: str = "") -> Tokens:
    def h(role: str, **kw: Any) -> dict[str, str]:
        return {"Authorization": f"Bearer {issue_dev_token(settings, role=role, **kw)}"}

    return Tokens(
        admin=h("admin", sub="admin-1"),
        operator=h("centre_operator", sub="op-1", unit=centre_id),
        facilitator=h("facilitator", sub="fac-1", unit="1371"),
        # verifiers and approvers act within a region (a token without a unit reaches nothing)
        verifier=h("verifier", sub="ver-1", unit="13"),
        approver=h("approver", sub="app-1", unit="13"),
    )


async def eventually(probe: Callable[[], Awaitable[Any]], what: str, timeout: float = 60) -> Any:
    return await support.eventually(probe, what, timeout=timeout, interval=0.3)


def participant_body(person: dict[str, str]) -> dict[str, Any]:
    return person | {
        "region_code": VILLAGE,
        "address": "Jl. Contoh No. 1",
        "household_size": 4,
        "business_field": "fashion_menjahit",
        "business_description": "jahit pakaian",
        "assistance_programmes": ["PKH", "BPNT"],
        "dtsen_decile": 1,
        "baseline_monthly_income": 1_500_000,
        "consent": {"purpose": "PENA programme participation", "given_on": "2026-10-01", "recorded_by": "fac-1"},
    }


def participants_csv(rows: list[dict[str, Any]]) -> bytes:
    out = io.StringIO()
    flat = [
        {k: (";".join(v) if isinstance(v, list) else v) for k, v in r.items() if k != "consent"}
        | {
            "consent_purpose": r["consent"]["purpose"],
            "consent_given_on": r["consent"]["given_on"],
            "consent_recorded_by": r["consent"]["recorded_by"],
        }
        for r in rows
    ]
    writer = csv.DictWriter(out, fieldnames=list(flat[0]))
    writer.writeheader()
    writer.writerows(flat)
    return out.getvalue().encode()


async def put_reference_year(
    http: httpx.AsyncClient,
    graduation_url: str,
    headers: dict[str, str],
    year: int,
    *,
    minimum_wage: int,
    poverty_line: int,
    source: str = "e2e example",
) -> None:
    """The reference data the graduation policy reads for a visit in `year`: Kota Padang's UMK and the
    poverty line (example figures)."""
    r = await http.put(
        graduation_url + "/v1/graduation/reference/minimum-wages",
        headers=headers,
        json=[
            {
                "level": "umk",
                "region_code": "1371",
                "year": year,
                "amount": minimum_wage,
                "source": source,
                "is_example": True,
            }
        ],
    )
    assert r.status_code == 200, r.text
    r = await http.put(
        graduation_url + "/v1/graduation/reference/poverty-lines",
        headers=headers,
        json=[{"year": year, "amount": poverty_line, "source": source, "is_example": True}],
    )
    assert r.status_code == 200, r.text


async def run_story(urls: dict[str, str], settings: Settings) -> dict[str, Any]:
    """Returns ids the caller may check further (e.g. the graduation.decided event on Kafka)."""
    t = tokens(settings)
    async with httpx.AsyncClient(timeout=30) as http:

        def url(service: str, path: str) -> str:
            return urls[service] + path

        # reference data the graduation policy needs for the year of the Monev visit
        visit_year = (datetime.now(UTC) + timedelta(days=95)).year
        for year in {visit_year, visit_year - 1}:
            await put_reference_year(
                http, urls["graduation"], t.admin, year, minimum_wage=3_000_000, poverty_line=400_000
            )

        # 1. registration: one by the API, one by CSV import
        r = await http.post(url("participants", "/v1/participants"), headers=t.admin, json=participant_body(WOMAN))
        assert r.status_code == 201, r.text
        woman_id = r.json()["id"]
        r = await http.post(
            url("participants", "/v1/participants/imports"),
            headers=t.admin,
            files={"file": ("kpm.csv", participants_csv([participant_body(MAN)]), "text/csv")},
        )
        assert r.status_code == 202, r.text
        job_url = url("participants", f"/v1/participants/imports/{r.json()['id']}")

        async def import_done() -> dict[str, Any] | None:
            job = (await http.get(job_url, headers=t.admin)).json()
            return job if job.get("status") in ("completed", "done", "finished") else None

        job = await eventually(import_done, "the CSV import")
        # the Papuan family, its village given in the dotted Kemendagri form: accepted, stored plain
        r = await http.post(
            url("participants", "/v1/participants"),
            headers=t.admin,
            json=participant_body(PAPUA) | {"region_code": "91.71.01.1001"},
        )
        assert r.status_code == 201, r.text
        assert r.json()["region_code"] == "9171011001"
        r = await http.get(
            url("participants", "/v1/participants/regions"), headers=t.admin, params={"prefix": "9171011"}
        )
        assert r.status_code == 200, r.text
        assert {"9171011001": "Gurabesi"}.items() <= {g["code"]: g["name"] for g in r.json()}.items()
        r = await http.post(url("participants", "/v1/participants/lookup"), headers=t.admin, json={"nik": MAN["nik"]})
        assert r.status_code == 200, (job, r.text)
        man_id = r.json()["id"]

        # 2. training: centre, batch, enrolment (once the registry's events reached training)
        r = await http.post(
            url("training", "/v1/training-centres"),
            headers=t.admin,
            json={"name": "BBPPKS Padang", "code": "BBPPKS-PADANG", "region_code": "1371"},
        )
        assert r.status_code == 201, r.text
        centre_id = r.json()["id"]
        today = datetime.now(UTC).date()
        sessions = [
            {"date": str(today - timedelta(days=d)), "module": m}
            for d, m in [
                (20, "pena_introduction"),
                (18, "motivation_work_ethic"),
                (16, "social_entrepreneurship_basics"),
                (14, "technical_skills"),
                (12, "technical_skills"),
            ]
        ]
        r = await http.post(
            url("training", "/v1/batches"),
            headers=t.admin,
            json={
                "centre_id": centre_id,
                "name": "Angkatan I Menjahit",
                "business_field": "fashion_menjahit",
                "method": "life_skill_training",
                "start_date": str(today - timedelta(days=21)),
                "end_date": str(today - timedelta(days=11)),
                "sessions": sessions,
                "region_code": VILLAGE,
                "capacity": 25,
            },
        )
        assert r.status_code == 201, r.text
        batch = r.json()
        batch_url = url("training", f"/v1/batches/{batch['id']}")
        assert (await http.post(batch_url + "/status", headers=t.admin, json={"status": "open"})).status_code == 200

        async def enrolled(pid: str) -> bool:
            r = await http.post(
                batch_url + "/enrolments", headers=t.admin, json={"participant_id": pid, "exit_agreement": True}
            )
            return r.status_code == 201

        await eventually(lambda: enrolled(woman_id), "enrolment of the registered participant")
        await eventually(lambda: enrolled(man_id), "enrolment of the imported participant")
        assert (await http.post(batch_url + "/status", headers=t.admin, json={"status": "running"})).status_code == 200
        for session in (await http.get(batch_url, headers=t.admin)).json()["sessions"]:
            present = [woman_id] if session["module"] == "technical_skills" else [woman_id, man_id]
            r = await http.post(
                batch_url + "/attendance", headers=t.admin, json={"session_id": session["id"], "present": present}
            )
            assert r.status_code in (200, 201), r.text
        r = await http.post(batch_url + "/close", headers=t.admin, json={})
        assert r.status_code == 200, r.text
        roster = (await http.get(batch_url + "/roster", headers=t.admin)).json()

        # 3. monev: a task 3 calendar months on; move the monev clock past it
        async def task_of(pid: str) -> dict[str, Any] | None:
            items = (
                await http.get(url("monev", "/v1/monev/tasks"), headers=t.admin, params={"participant_id": pid})
            ).json()["items"]
            return items[0] if items else None

        task = await eventually(lambda: task_of(woman_id), "the monev task")
        assert task["status"] == "scheduled"
        assert await task_of(man_id) is None  # 3 of 5 sessions is under the 80% rule: dropped, no follow-up
        r = await http.put(url("monev", "/v1/ops/clock"), headers=t.admin, json={"offset": "P3M5D"})
        assert r.status_code == 200, r.text
        monev_today = date.fromisoformat(r.json()["now"][:10])

        async def due() -> dict[str, Any] | None:
            current = await task_of(woman_id)
            return current if current and current["status"] == "due" else None

        await eventually(due, "the task to come due")
        r = await http.post(
            url("monev", f"/v1/monev/tasks/{task['id']}/assignment"), headers=t.admin, json={"facilitator": "fac-1"}
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            url("monev", f"/v1/monev/tasks/{task['id']}/survey"),
            headers=t.facilitator,
            json={
                "visit_date": str(monev_today),
                "respondent": "participant",
                "business_status": "active",
                "business_field": "fashion_menjahit",
                "monthly_revenue": 6_000_000,
                "monthly_household_income": 4_200_000,
                "household_size": 4,
                "workers_employed": 1,
                "business_assets": 8_000_000,
                "savings": 1_000_000,
                "assistance_still_received": [],
                "welfare_self_assessment": 4,
                "voluntary_exit_statement": True,
                "notes": "usaha jahit berjalan baik",
            },
        )
        assert r.status_code in (200, 201), r.text

        # 4. graduation: assessment, verification, approval by another person
        async def assessment() -> dict[str, Any] | None:
            items = (
                await http.get(
                    url("graduation", "/v1/graduation/assessments"),
                    headers=t.admin,
                    params={"participant_id": woman_id},
                )
            ).json()["items"]
            return items[0] if items else None

        found = await eventually(assessment, "the graduation assessment")
        assert found["outcome"] == "ready", found
        # the figure as published now (record time echoed): asked again later with that known_at, the
        # decision recorded afterwards leaves it exactly as it was
        stats_url = url("graduation", "/v1/graduation/statistics")
        r = await http.get(stats_url, headers=t.admin, params={"as_of": str(monev_today)})
        assert r.status_code == 200, r.text
        published = r.json()
        assert published["totals"]["persons"]["ready"] == 1, published
        a_url = url("graduation", f"/v1/graduation/assessments/{found['id']}")
        r = await http.post(a_url + "/verification", headers=t.verifier, json={"evidence_checked": True})
        assert r.status_code == 201, r.text
        r = await http.post(
            a_url + "/decision",
            headers=t.verifier,
            json={"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"},
        )
        assert r.status_code == 403  # the verifier cannot also approve (and lacks the scope)
        r = await http.post(
            a_url + "/decision",
            headers=t.approver,
            json={"decision": "approve", "kind": "sejahtera_mandiri", "reason": "income above UMK"},
        )
        assert r.status_code in (200, 201), r.text
        decision = r.json()

        # 5. the registry hears graduation.decided
        async def graduated() -> bool:
            r = await http.get(url("participants", f"/v1/participants/{woman_id}"), headers=t.admin)
            return r.status_code == 200 and r.json()["status"] == "graduated"

        await eventually(graduated, "the participant to be graduated in the registry")

        # 6. statistics on the visit date: as known now (graduated), and as known when first published
        r = await http.get(stats_url, headers=t.admin, params={"as_of": str(monev_today)})
        assert r.json()["totals"]["persons"]["graduated"] == 1, r.text
        r = await http.get(
            stats_url, headers=t.admin, params={"as_of": str(monev_today), "known_at": published["known_at"]}
        )
        assert r.json()["totals"] == published["totals"], (r.text, published)
        # grouped and named from what the services announced

        async def grouped(by: str) -> list[dict[str, Any]] | None:
            params = {"as_of": str(monev_today), "group_by": by}
            groups = (await http.get(stats_url, headers=t.admin, params=params)).json()["groups"]
            return groups if groups and all(g["name"] for g in groups) else None  # read models filled

        [method] = await eventually(lambda: grouped("method"), "statistics by method with names")
        assert method["key"] == "life_skill_training", method
        assert method["name"].startswith("Life skill training")  # from training.batch_scheduled
        assert method["persons"]["graduated"] == 1
        [sex] = await eventually(lambda: grouped("sex"), "statistics by sex with names")
        assert (sex["key"], sex["name"]) == ("F", "Perempuan (female)")  # sex from participant.registered
        by_sex = await http.get(
            stats_url, headers=t.admin | {"Accept": "text/csv"}, params={"as_of": str(monev_today), "group_by": "sex"}
        )
        assert by_sex.status_code == 200, by_sex.text
        [woman, total] = list(csv.DictReader(io.StringIO(by_sex.text)))
        assert woman["persons_graduated"] == total["kpm_graduated"] == ""  # one family: suppressed in exports
        assert woman["suppressed"] == "persons_graduated;kpm_graduated"
        return {
            "woman_id": woman_id,
            "man_id": man_id,
            "batch": batch,
            "roster": roster,
            "task": task,
            "decision": decision,
        }
