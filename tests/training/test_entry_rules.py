"""Entry rules at enrolment on a real PostgreSQL: the versioned policy (seeded 2023.1 by migration),
one 422 error per failed rule (field, rule code), the version recorded on the enrolment, a newer version
taking over from its effective date, and the admin override recorded on the enrolment and audited."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import insert, select

from pena.clock import business_date
from services.training.models import Enrolment, EntryPolicy
from tests.support import audit_rows, in_service, register
from tests.training.support import create_centre, open_batch


def _rules(response: Any) -> list[tuple[str, str]]:
    assert response.headers["content-type"].startswith("application/problem+json")
    return [(e["field"], e["rule"]) for e in response.json()["errors"]]


async def _enrol(runtime, api, auth, participant_id: str, **body: Any) -> Any:
    admin = auth("admin")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin, f"C-{participant_id}"))
        payload = {"participant_id": participant_id, "exit_agreement": True} | body
        return await client.post(f"/v1/batches/{batch['id']}/enrolments", json=payload, headers=admin)


async def test_a_participant_meeting_every_rule_is_enrolled_under_the_seeded_policy(runtime, api, auth) -> None:
    await register(runtime, "p-ok")  # born 1988, PKH, decile 2, fashion_menjahit
    response = await _enrol(runtime, api, auth, "p-ok")
    assert response.status_code == 201, response.text
    assert (response.json()["policy_version"], response.json()["overridden_rules"]) == ("2023.1", [])
    assert response.json()["exit_agreement"] is True

    async def stored(session):
        return (await session.execute(select(Enrolment))).scalars().one()

    enrolment = await in_service(runtime, "training", stored)
    assert (enrolment.policy_version, enrolment.exit_agreement, enrolment.overridden_rules) == ("2023.1", True, [])
    [row] = await audit_rows(runtime, "training", "training.enrolment.created")
    assert row.details["policy_version"] == "2023.1"
    assert "entry_rules_overridden" not in row.details


@pytest.mark.parametrize(
    ("facts", "body", "expected"),
    [
        ({"birth_year": 2015}, {}, [("participant.birth_year", "working_age")]),  # a child
        ({"birth_year": 1950}, {}, [("participant.birth_year", "working_age")]),  # past working age
        ({"birth_year": None}, {}, [("participant.birth_year", "working_age")]),  # not known: fails closed
        ({"assistance_programmes": ("PBI-JK",)}, {}, [("participant.assistance_programmes", "kpm_status")]),
        ({"dtsen_decile": 7}, {}, [("participant.dtsen_decile", "kpm_status")]),
        ({"business_field": None}, {}, [("participant.business_field", "business_running_or_planned")]),
        ({}, {"exit_agreement": False}, [("exit_agreement", "exit_agreement_required")]),
    ],
)
async def test_each_failed_rule_is_one_named_error(runtime, api, auth, facts, body, expected) -> None:
    await register(runtime, "p-rule", **facts)
    response = await _enrol(runtime, api, auth, "p-rule", **body)
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("/entry_rules_failed")
    assert response.json()["policy_version"] == "2023.1"
    assert _rules(response) == expected
    assert await audit_rows(runtime, "training", "training.enrolment.created") == []


async def test_every_failed_rule_is_reported_at_once(runtime, api, auth) -> None:
    await register(runtime, "p-all", birth_year=1940, assistance_programmes=(), business_field=None)
    response = await _enrol(runtime, api, auth, "p-all", exit_agreement=False)
    assert response.status_code == 422
    assert _rules(response) == [
        ("participant.birth_year", "working_age"),
        ("participant.assistance_programmes", "kpm_status"),
        ("participant.business_field", "business_running_or_planned"),
        ("exit_agreement", "exit_agreement_required"),
    ]


async def test_a_newer_policy_version_applies_from_its_effective_date(runtime, api, auth) -> None:
    today = business_date(runtime.clock.now(), "Asia/Jakarta")
    stricter = {
        "min_age": 18,
        "max_age": 35,
        "kpm_programmes": ["PKH"],
        "max_dtsen_decile": 2,
        "require_business": True,
        "require_exit_agreement": True,
    }

    async def add_versions(session):
        rows = [
            {"version": "test.2", "effective_from": today, "parameters": stricter, "source": "test"},
            {
                "version": "test.3",
                "effective_from": date(today.year + 1, 1, 1),
                "parameters": stricter,
                "source": "future",
            },
        ]
        await session.execute(insert(EntryPolicy), [r | {"created_at": datetime.now(UTC)} for r in rows])

    await in_service(runtime, "training", add_versions)
    await register(runtime, "p-older", birth_year=today.year - 40)  # within 18-64, not 18-35
    refused = await _enrol(runtime, api, auth, "p-older")
    assert refused.status_code == 422
    assert refused.json()["policy_version"] == "test.2"  # in force today; test.3 is not yet
    assert _rules(refused) == [("participant.birth_year", "working_age")]
    assert "18 to 35" in refused.json()["errors"][0]["message"]

    await register(runtime, "p-young", birth_year=today.year - 30)
    accepted = await _enrol(runtime, api, auth, "p-young")
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["policy_version"] == "test.2"

    async with api(runtime) as client:
        listed = await client.get("/v1/batches/reference-data/entry-policies", headers=auth("integrator"))
    assert listed.status_code == 200
    assert [p["version"] for p in listed.json()] == ["2023.1", "test.2", "test.3"]
    assert listed.json()[0]["parameters"] == {
        "min_age": 18,
        "max_age": 64,
        "kpm_programmes": ["PKH", "BPNT"],
        "max_dtsen_decile": 4,
        "require_business": True,
        "require_exit_agreement": True,
    }


async def test_an_admin_overrides_failed_rules_with_a_reason_recorded_and_audited(runtime, api, auth) -> None:
    await register(runtime, "p-override", dtsen_decile=6, business_field=None)
    admin = auth("admin")
    async with api(runtime) as client:
        centre = await create_centre(client, admin)
        batch = await open_batch(client, admin, centre)
        url = f"/v1/batches/{batch['id']}/enrolments"
        body = {"participant_id": "p-override", "exit_agreement": True}
        operator = auth("centre_operator", unit=centre, sub="op-1")
        without_reason = await client.post(url, json=body, headers=operator)
        by_operator = await client.post(
            url, json=body | {"override_reason": "verified by DTSEN update"}, headers=operator
        )
        by_admin = await client.post(url, json=body | {"override_reason": "verified by DTSEN update"}, headers=admin)
    assert without_reason.status_code == 422
    assert by_operator.status_code == 403
    assert by_operator.json()["type"].endswith("/override_not_allowed")
    assert by_admin.status_code == 201, by_admin.text
    assert by_admin.json()["overridden_rules"] == ["kpm_status", "business_running_or_planned"]
    assert by_admin.json()["policy_version"] == "2023.1"
    [row] = await audit_rows(runtime, "training", "training.enrolment.created")
    assert row.subject_id == "p-override"
    assert row.details["entry_rules_overridden"] == ["kpm_status", "business_running_or_planned"]
    assert row.details["override_reason"] == "verified by DTSEN update"
    assert row.details["policy_version"] == "2023.1"
    assert "out_of_region" not in row.details  # a Padang participant: only the entry rules were overridden
