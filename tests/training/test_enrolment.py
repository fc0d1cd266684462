"""Enrolment rules on a real PostgreSQL: who may enrol, capacity under concurrency, double enrolment,
withdrawal, idempotent retries, and the read model's tolerance of late and repeated events."""

from __future__ import annotations

import asyncio

from pena.contracts import ParticipantUpdated
from services.training.models import Enrolment
from tests.support import (
    REGISTERED_AT,
    Announcement,
    count_rows,
    outbox_events,
    publish,
    register,
    registered,
    status_changed,
)
from tests.training.support import batch_body, create_centre, open_batch


async def test_unknown_participant_is_refused_then_registration_makes_them_enrollable(runtime, api, auth) -> None:
    admin = auth("admin")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        url = f"/v1/batches/{batch['id']}/enrolments"

        refused = await client.post(url, json={"participant_id": "p-unknown", "exit_agreement": True}, headers=admin)
        assert refused.status_code == 422
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert refused.json()["type"].endswith("/participant_unknown")

        await register(runtime, "p-unknown")
        accepted = await client.post(url, json={"participant_id": "p-unknown", "exit_agreement": True}, headers=admin)
        assert accepted.status_code == 201, accepted.text
        assert accepted.json()["status"] == "enrolled"

    enrolled = await outbox_events(runtime, "training", "training.enrolled")
    assert [e["subject"] for e in enrolled] == ["p-unknown"]
    assert "nik" not in str(enrolled[0]["data"]).lower()


async def test_graduated_participant_is_not_eligible(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-grad", status="graduated")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        response = await client.post(
            f"/v1/batches/{batch['id']}/enrolments",
            json={"participant_id": "p-grad", "exit_agreement": True},
            headers=admin,
        )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/participant_not_eligible")
    assert response.json()["participant_status"] == "graduated"


async def test_an_older_event_arriving_late_does_not_undo_a_newer_one(runtime, api, auth) -> None:
    await publish(
        runtime,
        status_changed("p-late", to="exited", version=2),  # newer, delivered first
        registered("p-late", status="active", version=1),  # older, delivered after
        registered("p-late", status="active", version=1),  # and once more
    )
    admin = auth("admin")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        response = await client.post(
            f"/v1/batches/{batch['id']}/enrolments",
            json={"participant_id": "p-late", "exit_agreement": True},
            headers=admin,
        )
    assert response.status_code == 422
    assert response.json()["participant_status"] == "exited"


async def test_capacity_holds_when_twenty_enrolments_race_for_ten_seats(runtime, api, auth) -> None:
    admin = auth("admin")
    people = [f"p-{i:02d}" for i in range(20)]
    await register(runtime, *people)
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin), capacity=10)
        url = f"/v1/batches/{batch['id']}/enrolments"
        responses = await asyncio.gather(
            *(client.post(url, json={"participant_id": p, "exit_agreement": True}, headers=admin) for p in people)
        )
        statuses = sorted(r.status_code for r in responses)
        assert statuses == [201] * 10 + [409] * 10, [r.text for r in responses if r.status_code not in (201, 409)]
        assert {r.json()["type"].rsplit("/", 1)[-1] for r in responses if r.status_code == 409} == {"batch_full"}
        shown = await client.get(f"/v1/batches/{batch['id']}", headers=admin)
        assert shown.json()["enrolled"] == 10
    assert await count_rows(runtime, "training", Enrolment) == 10
    assert len(await outbox_events(runtime, "training", "training.enrolled")) == 10


async def test_double_enrolment_is_a_conflict_and_idempotent_retry_returns_the_first_answer(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-1")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        url = f"/v1/batches/{batch['id']}/enrolments"
        first = await client.post(
            url, json={"participant_id": "p-1", "exit_agreement": True}, headers={**admin, "Idempotency-Key": "k-1"}
        )
        retry = await client.post(
            url, json={"participant_id": "p-1", "exit_agreement": True}, headers={**admin, "Idempotency-Key": "k-1"}
        )
        again = await client.post(url, json={"participant_id": "p-1", "exit_agreement": True}, headers=admin)
    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert again.status_code == 409
    assert again.json()["type"].endswith("/already_enrolled")
    assert len(await outbox_events(runtime, "training", "training.enrolled")) == 1


async def test_withdrawal_frees_the_seat_and_emits_dropped_withdrawn(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-a", "p-b")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin), capacity=1)
        url = f"/v1/batches/{batch['id']}/enrolments"
        assert (
            await client.post(url, json={"participant_id": "p-a", "exit_agreement": True}, headers=admin)
        ).status_code == 201
        assert (
            await client.post(url, json={"participant_id": "p-b", "exit_agreement": True}, headers=admin)
        ).status_code == 409
        withdrawn = await client.post(f"{url}/p-a/withdrawal", json={"reason_code": "moved_away"}, headers=admin)
        assert withdrawn.status_code == 200, withdrawn.text
        assert withdrawn.json()["status"] == "withdrawn"
        twice = await client.post(f"{url}/p-a/withdrawal", headers=admin)
        assert twice.status_code == 409
        assert (
            await client.post(url, json={"participant_id": "p-b", "exit_agreement": True}, headers=admin)
        ).status_code == 201
    dropped = await outbox_events(runtime, "training", "training.dropped")
    assert [(e["subject"], e["data"]["reason_code"]) for e in dropped] == [("p-a", "withdrawn")]


async def test_enrolment_needs_an_open_batch(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-1")
    async with api(runtime) as client:
        centre = await create_centre(client, admin)
        created = await client.post("/v1/batches", json=batch_body(centre), headers=admin)
        response = await client.post(
            f"/v1/batches/{created.json()['id']}/enrolments",
            json={"participant_id": "p-1", "exit_agreement": True},
            headers=admin,
        )
    assert response.status_code == 409
    assert response.json()["type"].endswith("/enrolment_closed")


async def test_the_same_participant_racing_five_times_is_enrolled_once(runtime, api, auth) -> None:
    admin = auth("admin")
    await register(runtime, "p-dup")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        url = f"/v1/batches/{batch['id']}/enrolments"
        responses = await asyncio.gather(
            *(
                client.post(url, json={"participant_id": "p-dup", "exit_agreement": True}, headers=admin)
                for _ in range(5)
            )
        )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409, 409]
    assert len(await outbox_events(runtime, "training", "training.enrolled")) == 1


async def test_participant_updated_to_exited_closes_enrolment(runtime, api, auth) -> None:
    await register(runtime, "p-upd")
    update = ParticipantUpdated(
        participant_id="p-upd",
        version=2,
        changed_fields=["status"],
        updated_at=REGISTERED_AT,
        region_code="1371011001",
        status="exited",
    )
    await publish(runtime, Announcement("participant.updated", update, "p-upd", REGISTERED_AT))
    admin = auth("admin")
    async with api(runtime) as client:
        batch = await open_batch(client, admin, await create_centre(client, admin))
        response = await client.post(
            f"/v1/batches/{batch['id']}/enrolments",
            json={"participant_id": "p-upd", "exit_agreement": True},
            headers=admin,
        )
    assert response.status_code == 422
    assert response.json()["type"].endswith("/participant_not_eligible")
