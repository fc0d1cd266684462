from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.participants.app import definition as participants
from tests.participants.support import decide_graduation, woman
from tests.support import graduation_publisher, outbox_events


@pytest.fixture
async def world(make_runtime, api, auth):
    runtime = await make_runtime([participants, graduation_publisher])
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
