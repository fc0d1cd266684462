from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pena.clock import ManualClock
from pena.kafka import ensure_topics
from services.participants.app import definition as participants
from tests.participants.support import dead_letter_errors, decide_graduation, decision, woman
from tests.support import eventually, graduation_publisher, outbox_events, publish

NOW = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)  # the registry's clock: after every decision below


@pytest.fixture
async def world(make_runtime, api, auth):
    runtime = await make_runtime([participants, graduation_publisher], clock=ManualClock(NOW))
    async with api(runtime) as client:
        admin = auth("admin")
        created = (await client.post("/v1/participants", json=woman(status="active"), headers=admin)).json()
        yield runtime, client, admin, created["id"]


async def test_graduation_decided_sets_graduated_and_a_reversal_sets_active(world) -> None:
    runtime, client, admin, participant_id = world
    await decide_graduation(runtime, participant_id, graduated=True, outcome="approved")
    graduated = (await client.get(f"/v1/participants/{participant_id}", headers=admin)).json()
    assert graduated["status"] == "graduated"
    assert graduated["version"] == 2

    await decide_graduation(
        runtime, participant_id, graduated=False, outcome="reversed", at=datetime(2026, 2, 20, tzinfo=UTC)
    )
    reversed_ = (await client.get(f"/v1/participants/{participant_id}", headers=admin)).json()
    assert reversed_["status"] == "active"
    assert reversed_["version"] == 3

    changes = [e["data"] for e in await outbox_events(runtime, "participants", "participant.status_changed")]
    assert [(c["from_status"], c["to_status"], c["reason_code"], c["version"]) for c in changes] == [
        ("active", "graduated", "graduation_decided", 2),
        ("graduated", "active", "graduation_reversed", 3),
    ]
    history = (await client.get(f"/v1/participants/{participant_id}/history", headers=admin)).json()
    assert history[-1]["actor"] == "system"
    assert history[-1]["to_status"] == "active"


async def test_stale_or_non_graduating_decisions_change_nothing(world) -> None:
    runtime, client, admin, participant_id = world
    await decide_graduation(runtime, participant_id, graduated=False, outcome="rejected")
    await decide_graduation(
        runtime, participant_id, graduated=True, outcome="approved", at=datetime(2026, 3, 1, tzinfo=UTC)
    )
    # an older reversal arriving late must not undo the newer graduation
    await decide_graduation(
        runtime, participant_id, graduated=False, outcome="reversed", at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    seen = (await client.get(f"/v1/participants/{participant_id}", headers=admin)).json()
    assert seen["status"] == "graduated"
    assert seen["version"] == 2
    assert len(await outbox_events(runtime, "participants", "participant.status_changed")) == 1


async def status_of(client, admin, participant_id: str) -> tuple[str, int]:
    seen = (await client.get(f"/v1/participants/{participant_id}", headers=admin)).json()
    return seen["status"], seen["version"]


async def exit_programme(client, admin, participant_id: str) -> None:
    exited = await client.post(
        f"/v1/participants/{participant_id}/status",
        json={"status": "exited", "reason_code": "moved_away", "reason": "moved to Jakarta"},
        headers=admin,
    )
    assert exited.status_code == 200, exited.text


@pytest.mark.parametrize("role", ["admin", "integrator"])
async def test_the_status_api_refuses_graduation(world, auth, role) -> None:
    runtime, client, admin, participant_id = world
    answer = await client.post(
        f"/v1/participants/{participant_id}/status",
        json={"status": "graduated", "reason_code": "ready", "reason": "income above UMK"},
        headers=auth(role),
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["field"] == "status"
    assert answer.json()["errors"][0]["rule"] == "graduation_only_by_decision"
    assert await status_of(client, admin, participant_id) == ("active", 1)
    assert await outbox_events(runtime, "participants", "participant.status_changed") == []
    await exit_programme(client, admin, participant_id)  # the administrative exit stays possible


async def test_a_decision_dated_beyond_the_clock_skew_is_dead_lettered_and_not_applied(world) -> None:
    runtime, client, admin, participant_id = world
    await decide_graduation(runtime, participant_id, graduated=True, outcome="approved", at=NOW + timedelta(hours=1))
    assert await status_of(client, admin, participant_id) == ("active", 1)
    [error] = await dead_letter_errors(runtime)
    assert "in the future" in error
    # within the skew (default 5 minutes) a decision applies
    await decide_graduation(runtime, participant_id, graduated=True, outcome="approved", at=NOW + timedelta(minutes=4))
    assert await status_of(client, admin, participant_id) == ("graduated", 2)


async def test_a_graduation_of_an_exited_participant_is_dead_lettered(world) -> None:
    runtime, client, admin, participant_id = world
    await exit_programme(client, admin, participant_id)
    await decide_graduation(runtime, participant_id, graduated=True, outcome="approved")
    assert await status_of(client, admin, participant_id) == ("exited", 2)
    [error] = await dead_letter_errors(runtime)
    assert "from exited to graduated" in error


async def test_a_reversal_of_a_participant_never_graduated_is_dead_lettered(world) -> None:
    runtime, client, admin, participant_id = world
    await exit_programme(client, admin, participant_id)
    await decide_graduation(runtime, participant_id, graduated=False, outcome="reversed")
    assert await status_of(client, admin, participant_id) == ("exited", 2)
    [error] = await dead_letter_errors(runtime)
    assert "from exited to active" in error


@pytest.mark.kafka
async def test_a_future_decision_over_kafka_is_dead_lettered(make_runtime, api, auth, settings) -> None:
    await ensure_topics(settings, ["participants", "graduation"])
    runtime = await make_runtime([participants, graduation_publisher], bus="kafka", workers=True)
    admin = auth("admin")
    async with api(runtime) as client:
        created = (await client.post("/v1/participants", json=woman(status="active"), headers=admin)).json()
        future = datetime.now(UTC) + timedelta(days=30)
        await publish(runtime, decision(created["id"], graduated=True, outcome="approved", at=future), drain=False)
        errors = await eventually(lambda: dead_letter_errors(runtime), "the refused decision is dead-lettered")
        assert "in the future" in errors[0]
        assert await status_of(client, admin, created["id"]) == ("active", 1)
