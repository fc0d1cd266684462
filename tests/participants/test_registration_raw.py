"""Registration without an Idempotency-Key runs as ONE statement on the raw asyncpg pool
(`registration.register_new`); with a key it runs through the ORM session (`register`). These tests pin
that the two paths write the same rows, that the one statement writes nothing when it refuses, and that
concurrent registrations of one NIK leave exactly one record with its companions."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from pena.tables import audit_log, outbox
from services.participants.models import Participant, ParticipantChange
from tests.participants.support import man, woman
from tests.support import audit_rows, count_rows, outbox_events

PARTICIPANTS = Participant.__table__  # type: ignore[attr-defined]
CHANGES = ParticipantChange.__table__  # type: ignore[attr-defined]
# columns whose values differ between two registrations by construction (ids, tokens, ciphertexts, times)
_PER_RECORD = {
    "id",
    "nik_token",
    "kk_token",
    "identity_hash",
    "nik_enc",
    "kk_enc",
    "name_enc",
    "birth_date_enc",
    "baseline_income_enc",
    "profile_enc",
    "created_at",
    "updated_at",
    "household_id",  # each registration here is its own family (the fixtures give each NIK its own KK)
}


async def _stored(registry, participant_id: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    async with registry.runtime.service("participants").db.transaction() as session:
        row = (await session.execute(select(Participant).where(col(Participant.id) == participant_id))).scalar_one()
        change = (
            await session.execute(
                select(ParticipantChange).where(col(ParticipantChange.participant_id) == participant_id)
            )
        ).scalar_one()
        audit = (
            (await session.execute(select(audit_log).where(audit_log.c.subject_id == participant_id))).mappings().one()
        )
    return row.model_dump(), change.model_dump(), dict(audit)


async def test_raw_path_writes_what_the_session_path_writes(registry) -> None:
    raw = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    keyed = await registry.client.post(
        "/v1/participants",
        json=woman(nik="1371015205900009", full_name="Siti Rahmawati Dua"),
        headers={**registry.admin, "Idempotency-Key": "session-path"},
    )
    assert raw.status_code == keyed.status_code == 201, (raw.text, keyed.text)
    # the answers: built from the input on the raw path, decrypted from the stored record on the other
    answer_raw, answer_keyed = raw.json(), keyed.json()
    for field in ("id", "nik", "kk_number", "full_name", "created_at", "updated_at", "household_id"):
        answer_raw.pop(field), answer_keyed.pop(field)
    assert answer_raw == answer_keyed
    assert raw.json()["household_id"]
    assert keyed.json()["household_id"]
    assert raw.headers["ETag"] == keyed.headers["ETag"] == '"1"'
    assert raw.headers["Location"] == f"/v1/participants/{raw.json()['id']}"
    assert raw.headers["content-type"] == keyed.headers["content-type"] == "application/json"

    row_raw, change_raw, audit_raw = await _stored(registry, raw.json()["id"])
    row_keyed, change_keyed, audit_keyed = await _stored(registry, keyed.json()["id"])
    assert {k: v for k, v in row_raw.items() if k not in _PER_RECORD} == {
        k: v for k, v in row_keyed.items() if k not in _PER_RECORD
    }
    assert {k for k, v in row_raw.items() if v is None} == {k for k, v in row_keyed.items() if v is None}
    assert row_raw["created_at"] == row_raw["updated_at"]
    for change in (change_raw, change_keyed):
        change.pop("id"), change.pop("participant_id"), change.pop("at")
    assert change_raw == change_keyed
    assert change_raw["action"] == "registered"
    for audit in (audit_raw, audit_keyed):
        for key in ("id", "at", "subject_id", "request_id", "correlation_id"):
            assert audit.pop(key) is not None
    assert audit_raw == audit_keyed
    assert audit_raw["details"] == {"flagged_possible_duplicate": False}

    raw_event, keyed_event = await outbox_events(registry.runtime, "participants", "participant.registered")
    assert raw_event.keys() == keyed_event.keys()
    assert raw_event["subject"] == raw.json()["id"]
    assert raw_event["data"]["participant_id"] == raw.json()["id"]
    for event in (raw_event, keyed_event):
        for key in ("id", "subject", "time", "correlationid", "traceparent"):
            event.pop(key, None)
        for key in ("participant_id", "nik_token", "registered_at", "household_id", "kk_token"):
            event["data"].pop(key)
    assert raw_event == keyed_event


async def test_refused_registration_writes_nothing(registry) -> None:
    unknown_regency = await registry.client.post(
        "/v1/participants", json=man(region_code="1399011001"), headers=registry.admin
    )
    assert unknown_regency.status_code == 422
    assert {(e["field"], e["rule"]) for e in unknown_regency.json()["errors"]} == {("region_code", "unknown_region")}
    first = await registry.client.post("/v1/participants", json=man(), headers=registry.admin)
    assert first.status_code == 201
    duplicate = await registry.client.post("/v1/participants", json=man(full_name="Budi S."), headers=registry.admin)
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"].startswith("application/problem+json")
    assert duplicate.json()["existing_id"] == first.json()["id"]
    runtime = registry.runtime
    assert await count_rows(runtime, "participants", PARTICIPANTS) == 1
    assert await count_rows(runtime, "participants", CHANGES) == 1
    assert await count_rows(runtime, "participants", outbox) == 1
    assert len(await audit_rows(runtime, "participants", "participant.register")) == 1


async def test_flagged_possible_duplicate_is_in_row_and_audit(registry) -> None:
    first = await registry.client.post("/v1/participants", json=man(), headers=registry.admin)
    second = await registry.client.post(
        "/v1/participants", json=man(nik="1371010301850007", full_name="BUDI  santoso"), headers=registry.admin
    )
    assert second.status_code == 201
    row, _, audit = await _stored(registry, second.json()["id"])
    assert row["possible_duplicate_of"] == first.json()["id"]
    assert row["flagged"] is True
    assert audit["details"] == {"flagged_possible_duplicate": True}


async def test_concurrent_registrations_of_one_nik_leave_exactly_one(registry) -> None:
    answers = await asyncio.gather(
        *(
            registry.client.post("/v1/participants", json=man(full_name=f"Budi {n}"), headers=registry.admin)
            for n in range(8)
        )
    )
    statuses = sorted(a.status_code for a in answers)
    assert statuses == [201] + [409] * 7, [a.text for a in answers]
    winner = next(a for a in answers if a.status_code == 201).json()["id"]
    assert {a.json()["existing_id"] for a in answers if a.status_code == 409} == {winner}
    runtime = registry.runtime
    assert await count_rows(runtime, "participants", PARTICIPANTS) == 1
    assert await count_rows(runtime, "participants", CHANGES) == 1
    assert await count_rows(runtime, "participants", outbox) == 1
    assert [r.subject_id for r in await audit_rows(runtime, "participants", "participant.register")] == [winner]
