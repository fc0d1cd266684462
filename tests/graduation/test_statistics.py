"""Statistics on valid time (visit and effective dates), reproducible on record time (known_at),
breakdowns with names, and the CSV / XLSX exports with small-cell suppression."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from typing import Any

import openpyxl
import pytest

from pena.contracts import BatchScheduled
from pena.contracts.participants import ParticipantRegistered
from pena.http.tabular import XLSX_MEDIA_TYPE
from services.graduation.app import definition as graduation
from tests.graduation.conftest import Env, _env
from tests.graduation.support import SOLOK_VILLAGE, monev_result, publish_monev
from tests.support import (
    NIK_TOKEN,
    PADANG_VILLAGE,
    Announcement,
    audit_rows,
    monev_publisher,
    participants_publisher,
    publish,
    training_publisher,
)

READY, NOT_READY = 3_500_000, 1_000_000


@pytest.fixture
async def env(make_runtime: Any, api: Any, auth: Any) -> AsyncIterator[Env]:
    """graduation with stand-in registry, training and monev (participant facts, batches, results)."""
    definitions = [participants_publisher, training_publisher, monev_publisher, graduation]
    async for built in _env(make_runtime, api, auth, definitions):
        yield built


async def stats(env: Env, auth: Any, as_of: str, **params: Any) -> dict[str, Any]:
    answer = await env.client.get(
        "/v1/graduation/statistics", params={"as_of": as_of, **params}, headers=auth("integrator")
    )
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def persons(answer: dict[str, Any]) -> dict[str, int]:
    return dict(answer["totals"]["persons"])


async def test_a_published_figure_stays_the_same_after_late_data(env: Env, auth: Any) -> None:
    """The figure for 31 July 2023 asked with known_at = its publication time is the same answer after
    late visits, a correction and an older survey arrive; without known_at the new facts count."""
    a = monev_result("p-a", income=READY, visit=date(2023, 7, 10))
    await publish_monev(env.runtime, a)
    await publish_monev(env.runtime, monev_result("p-b", income=READY, visit=date(2023, 7, 15)))
    await publish_monev(env.runtime, monev_result("p-e", income=NOT_READY, visit=date(2023, 8, 20)))
    published = await stats(env, auth, "2023-07-31", group_by="regency")
    assert persons(published) == {"ready": 2, "graduated": 0, "deferred": 0, "rejected": 0}
    published_at = published["known_at"]

    env.clock.advance("P30D")
    await publish_monev(env.runtime, monev_result("p-c", income=READY, visit=date(2023, 7, 20)))  # late visits
    await publish_monev(env.runtime, monev_result("p-d", income=READY, visit=date(2023, 7, 21)))
    # p-a's survey corrected: the family was not ready after all
    corrected = monev_result("p-a", income=NOT_READY, visit=date(2023, 7, 10), task_id=a.task_id, submission_version=2)
    await publish_monev(env.runtime, corrected)
    # an older survey of p-e arrives after its newer one: it holds for the days between the two visits
    await publish_monev(env.runtime, monev_result("p-e", income=READY, visit=date(2023, 7, 25)))

    now = await stats(env, auth, "2023-07-31", group_by="regency")
    assert persons(now)["ready"] == 4  # p-b, p-c, p-d, p-e
    again = await stats(env, auth, "2023-07-31", group_by="regency", known_at=published_at)
    assert again == published
    # p-e's newer visit (20 August, not ready) takes over from then on
    assert persons(await stats(env, auth, "2023-08-31"))["ready"] == 3


async def test_known_at_in_the_future_is_refused(env: Env, auth: Any) -> None:
    answer = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05", "known_at": "2030-01-01T00:00:00Z"},
        headers=auth("integrator"),
    )
    assert answer.status_code == 422
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert [(e["field"], e["rule"]) for e in answer.json()["errors"]] == [("known_at", "not_in_future")]
    naive = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05", "known_at": "2026-01-01T00:00:00"},
        headers=auth("integrator"),
    )
    assert naive.status_code == 422  # a moment without its offset is ambiguous


def registered(participant_id: str, *, sex: str, birth_year: int, household_id: str | None = None) -> Announcement:
    at = datetime(2025, 11, 1, tzinfo=UTC)
    payload = ParticipantRegistered(
        participant_id=participant_id,
        version=1,
        nik_token=NIK_TOKEN,
        registered_at=at,
        region_code=PADANG_VILLAGE,
        sex=sex,  # type: ignore[arg-type]
        birth_year=birth_year,
        status="active",
        household_id=household_id,
    )
    return Announcement("participant.registered", payload, participant_id, at)


def scheduled(batch_id: str, *, method: str, method_name: str) -> Announcement:
    payload = BatchScheduled(
        batch_id=batch_id,
        centre_id="c-padang",
        business_field="kuliner",
        method=method,
        start_date=date(2025, 9, 1),
        end_date=date(2025, 9, 12),
        region_code=PADANG_VILLAGE,
        capacity=30,
        centre_name="Sentra Budi Perkasa Padang",
        method_name=method_name,
        business_field_name="Kuliner (culinary)",
    )
    return Announcement("training.batch_scheduled", payload, batch_id, datetime(2025, 8, 1, tzinfo=UTC))


async def test_breakdowns_carry_codes_and_names(env: Env, auth: Any) -> None:
    await publish(
        env.runtime,
        registered("p-f1", sex="F", birth_year=1990),
        registered("p-f2", sex="F", birth_year=1999),
        registered("p-m1", sex="M", birth_year=1960),
    )
    await publish(
        env.runtime,
        scheduled("b-lst", method="life_skill_training", method_name="Life skill training"),
        scheduled("b-cbl", method="community_based_learning", method_name="Community based learning"),
    )
    for pid, batch in (("p-f1", "b-lst"), ("p-f2", "b-lst"), ("p-m1", "b-cbl")):
        result = monev_result(pid, income=READY, centre_id="c-padang").model_copy(update={"batch_id": batch})
        await publish_monev(env.runtime, result)

    def table(answer: dict[str, Any]) -> dict[str | None, tuple[str | None, int]]:
        return {g["key"]: (g["name"], g["persons"]["ready"]) for g in answer["groups"]}

    assert table(await stats(env, auth, "2026-01-05", group_by="sex")) == {
        "F": ("Perempuan (female)", 2),
        "M": ("Laki-laki (male)", 1),
    }
    # age on the as_of date by birth year: 36, 27 and 66
    assert table(await stats(env, auth, "2026-01-05", group_by="age_group")) == {
        "35_44": ("35-44", 1),
        "25_34": ("25-34", 1),
        "65_plus": ("65 and over", 1),
    }
    assert table(await stats(env, auth, "2026-01-05", group_by="method")) == {
        "community_based_learning": ("Community based learning", 1),
        "life_skill_training": ("Life skill training", 2),
    }
    assert table(await stats(env, auth, "2026-01-05", group_by="centre")) == {
        "c-padang": ("Sentra Budi Perkasa Padang", 3)
    }
    assert table(await stats(env, auth, "2026-01-05", group_by="business_field")) == {
        "kuliner": ("Kuliner (culinary)", 3)
    }
    assert table(await stats(env, auth, "2026-01-05", group_by="province")) == {"13": ("Sumatera Barat", 3)}
    assert table(await stats(env, auth, "2026-01-05", group_by="regency")) == {"1371": ("Kota Padang", 3)}
    village = await stats(env, auth, "2026-01-05", group_by="region", region_digits=10)
    assert table(village) == {PADANG_VILLAGE: ("Belakang Pondok", 3)}


async def test_persons_and_families_are_both_counted(env: Env, auth: Any) -> None:
    """Two members of one KPM and a participant whose household graduation never heard of: three
    persons, two families; by sex the couple falls in two groups and the totals still count one KPM."""
    await publish(
        env.runtime,
        registered("p-wife", sex="F", birth_year=1990, household_id="hh-1"),
        registered("p-husband", sex="M", birth_year=1988, household_id="hh-1"),
    )
    for pid in ("p-wife", "p-husband", "p-unknown"):
        await publish_monev(env.runtime, monev_result(pid, income=READY))
    answer = await stats(env, auth, "2026-01-05", group_by="sex")
    assert answer["totals"]["persons"]["ready"] == 3
    assert answer["totals"]["kpm"]["ready"] == 2  # hh-1 and p-unknown's own
    by_sex = {g["key"]: (g["persons"]["ready"], g["kpm"]["ready"]) for g in answer["groups"]}
    assert by_sex == {"F": (1, 1), "M": (1, 1), None: (1, 1)}
    export = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05"},
        headers=auth("integrator") | {"Accept": "text/csv"},
    )
    [total] = list(csv.DictReader(io.StringIO(export.text)))
    assert (total["code"], total["persons_ready"], total["kpm_ready"]) == ("total", "", "")  # 3 and 2: below 5
    assert total["suppressed"] == "persons_ready;kpm_ready"


async def _eight_ready(env: Env) -> None:
    for i in range(6):
        await publish_monev(env.runtime, monev_result(f"p-padang-{i}", income=READY))
    for i in range(2):
        await publish_monev(env.runtime, monev_result(f"p-solok-{i}", income=READY, region=SOLOK_VILLAGE))


async def test_csv_export_suppresses_small_cells(env: Env, auth: Any) -> None:
    await _eight_ready(env)
    answer = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05", "group_by": "regency"},
        headers=auth("integrator") | {"Accept": "text/csv"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert answer.headers["content-disposition"] == 'attachment; filename="graduation-statistics-2026-01-05.csv"'
    rows = list(csv.DictReader(io.StringIO(answer.text)))
    by_code = {r["code"]: r for r in rows}
    assert list(by_code) == ["1371", "1372", "total"]
    assert by_code["1371"]["name"] == "Kota Padang"
    assert by_code["1371"]["persons_ready"] == by_code["1371"]["kpm_ready"] == "6"  # six families of their own
    assert by_code["1371"]["persons_graduated"] == "0"  # zeros disclose no one: shown
    assert by_code["1371"]["suppressed"] == ""
    # two families in Kota Solok: below PENA_MIN_CELL_SIZE (5), left empty and marked
    assert by_code["1372"]["name"] == "Kota Solok"
    assert by_code["1372"]["persons_ready"] == ""
    assert by_code["1372"]["suppressed"] == "persons_ready;kpm_ready"
    assert by_code["total"]["persons_ready"] == "8"
    [audit] = await audit_rows(env.runtime, "graduation", "graduation.statistics.export")
    assert audit.details["format"] == "csv"
    assert audit.details["group_by"] == "regency"


async def test_xlsx_export_and_json_stays_the_default(env: Env, auth: Any) -> None:
    await _eight_ready(env)
    answer = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05", "group_by": "regency"},
        headers=auth("integrator") | {"Accept": f"{XLSX_MEDIA_TYPE}, application/json;q=0.5"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == XLSX_MEDIA_TYPE
    sheet = openpyxl.load_workbook(io.BytesIO(answer.content), read_only=True).active
    assert sheet is not None
    header, *rows = [list(r) for r in sheet.iter_rows(values_only=True)]
    assert header[:3] == ["code", "name", "persons_ready"]
    assert header[-1] == "suppressed"
    body = {r[0]: dict(zip(header, r, strict=True)) for r in rows}
    assert body["1371"]["persons_ready"] == 6  # a number cell, not text
    assert body["1372"]["persons_ready"] is None
    assert body["1372"]["suppressed"] == "persons_ready;kpm_ready"
    # without a file type in Accept: JSON, unsuppressed (an audited read by staff in reach)
    plain = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05", "group_by": "regency"},
        headers=auth("integrator") | {"Accept": "*/*"},
    )
    assert plain.headers["content-type"] == "application/json"
    assert {g["key"]: g["persons"]["ready"] for g in plain.json()["groups"]} == {"1371": 6, "1372": 2}


async def test_the_openapi_document_declares_both_file_types(env: Env) -> None:
    document = (await env.client.get("/openapi.json")).json()
    content = document["paths"]["/v1/graduation/statistics"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv", XLSX_MEDIA_TYPE}
    parameters = {p["name"] for p in document["paths"]["/v1/graduation/statistics"]["get"]["parameters"]}
    assert {"as_of", "known_at", "group_by"} <= parameters
