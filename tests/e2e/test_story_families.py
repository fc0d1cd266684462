"""Families across the four services as real processes on Kafka (issue 14): two members of one KK
register, the second is refused with 409 naming the first; the whole programme story runs, a family
appeals its graduation, then asks for erasure, and afterwards no database of any service holds a
figure, note or KK token of that family."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import httpx

from composition import infra
from services.participants.identity import kk_token
from tests.e2e.conftest import SERVICES, Deployment
from tests.e2e.story import VILLAGE, WOMAN, eventually, participant_body, run_story, tokens
from tests.e2e.test_story import settings_of

# a family of two, both of working age, one KK (registered 1 February 2016)
FAMILY_KK = "1371010102160005"
MOTHER = {
    "nik": "1371015003880003",
    "kk_number": FAMILY_KK,
    "full_name": "Rina Marlina",
    "birth_date": "1988-03-10",
    "sex": "F",
}
FATHER = {
    "nik": "1371011207860004",
    "kk_number": FAMILY_KK,
    "full_name": "Anton Saputra",
    "birth_date": "1986-07-12",
    "sex": "M",
}
# what the story's survey and this test's appeal say about the woman's family (tests/e2e/story.py)
SURVEY_FIGURES = ("4200000", "6000000", "8000000")
NOTES = ("usaha jahit berjalan baik",)
GROUNDS = "kios rusak karena banjir, keluarga Siti belum mandiri"


async def _rows_as_text(namespace: str, service: str) -> dict[str, str]:
    """Every row of every table of the service's database, as JSON text per table."""
    connection = await asyncpg.connect(
        user="postgres", host="127.0.0.1", port=infra.PostgresInfra().port, database=f"{namespace}_{service}"
    )
    try:
        tables = await connection.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
        )
        dumped = {}
        for (table,) in tables:
            rows = await connection.fetch(f'SELECT row_to_json(t)::text FROM "{table}" AS t')  # noqa: S608
            dumped[table] = "\n".join(r[0] for r in rows)
        return dumped
    finally:
        await connection.close()


async def test_one_family_one_participant_and_an_erased_family_leaves_nothing(four_processes: Deployment) -> None:
    settings = settings_of(four_processes)
    urls = four_processes.urls
    t = tokens(settings)
    async with httpx.AsyncClient(timeout=30) as http:
        # 1. two members of one KK: the first registers, the second is refused naming the first
        mother = await http.post(
            urls["participants"] + "/v1/participants", headers=t.admin, json=participant_body(MOTHER)
        )
        assert mother.status_code == 201, mother.text
        father = await http.post(
            urls["participants"] + "/v1/participants", headers=t.admin, json=participant_body(FATHER)
        )
        assert father.status_code == 409, father.text
        assert father.headers["content-type"].startswith("application/problem+json")
        assert father.json()["type"].rsplit("/", 1)[-1] == "household_limit"
        assert father.json()["existing_id"] == mother.json()["id"]
        household = await http.get(
            urls["participants"] + f"/v1/households/{mother.json()['household_id']}", headers=t.admin
        )
        assert household.status_code == 200, household.text
        assert [m["participant_id"] for m in household.json()["members"]] == [mother.json()["id"]]

    # 2. the programme's story for another family (Siti's): training, Monev survey, graduation
    outcome = await run_story(urls, settings)
    woman_id = outcome["woman_id"]
    decision_id = outcome["decision"]["id"]
    async with httpx.AsyncClient(timeout=30) as http:
        # graduation.decided carried the family, so the registry's household is the one decided on
        read = await http.get(urls["participants"] + f"/v1/participants/{woman_id}", headers=t.admin)
        household_id = read.json()["household_id"]
        assert household_id
        decided = await http.get(urls["graduation"] + f"/v1/graduation/decisions/{decision_id}", headers=t.admin)
        assert decided.status_code == 200, decided.text
        appeal = await http.post(
            urls["graduation"] + f"/v1/graduation/decisions/{decision_id}/appeals",
            headers=t.facilitator,
            json={"grounds": GROUNDS},
        )
        assert appeal.status_code == 201, appeal.text

        # before the erasure the family's figures, notes and token are where the scan below looks
        token = kk_token(WOMAN["kk_number"], settings.nik_hmac_key)
        before = {service: await _rows_as_text(four_processes.namespace, service) for service in SERVICES}
        assert token in before["participants"]["households"]
        assert "4200000" in before["monev"]["monev_surveys"]
        assert GROUNDS in before["graduation"]["graduation_appeal"]
        assert token in before["graduation"]["graduation_participant_view"]

        # 3. erasure in the registry reaches monev and graduation by event
        erased = await http.post(
            urls["participants"] + f"/v1/participants/{woman_id}/erasure",
            headers=t.admin,
            json={"reason": "UU PDP request by the family"},
        )
        assert erased.status_code == 200, erased.text

        async def graduation_erased() -> bool:
            r = await http.get(urls["graduation"] + f"/v1/graduation/decisions/{decision_id}", headers=t.admin)
            return r.json()["reason"] == "[erased]"

        async def monev_erased() -> bool:
            r = await http.get(urls["monev"] + f"/v1/monev/tasks/{outcome['task']['id']}", headers=t.admin)
            return r.status_code == 200 and r.json()["result"] is None

        await eventually(graduation_erased, "graduation to erase the family's texts")
        await eventually(monev_erased, "monev to erase the family's survey")
        decision = (
            await http.get(urls["graduation"] + f"/v1/graduation/decisions/{decision_id}", headers=t.admin)
        ).json()
        assert (decision["outcome"], decision["kind"], decision["graduated"]) == ("approved", "sejahtera_mandiri", True)

    # 4. no database of any service keeps a figure, note or family token of the erased family
    secrets = (*SURVEY_FIGURES, *NOTES, GROUNDS, token, WOMAN["kk_number"], WOMAN["nik"], WOMAN["full_name"])
    found: dict[str, Any] = {}
    for service in SERVICES:
        for table, text in (await _rows_as_text(four_processes.namespace, service)).items():
            hits = [s for s in secrets if s in text]
            if hits:
                found[f"{service}.{table}"] = hits
    assert found == {}, json.dumps(found)
    # and the rows of the family that statistics count are still there (region and outcome)
    graduation_rows = await _rows_as_text(four_processes.namespace, "graduation")
    assert woman_id in graduation_rows["graduation_decision"]
    assert VILLAGE in graduation_rows["graduation_decision"]
    monev_rows = await _rows_as_text(four_processes.namespace, "monev")
    survey = next(json.loads(line) for line in monev_rows["monev_surveys"].splitlines())
    assert survey["erased_at"]
    assert (survey["business_status"], survey["monthly_household_income"], survey["notes_encrypted"]) == (
        "active",
        None,
        None,
    )
