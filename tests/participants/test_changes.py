from __future__ import annotations

from tests.participants.support import KK, WOMAN_NIK, woman
from tests.support import outbox_events


async def _created(registry) -> dict:
    answer = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def test_patch_needs_if_match_and_refuses_a_stale_etag(registry) -> None:
    created = await _created(registry)
    url = f"/v1/participants/{created['id']}"
    change = {"household_size": 5, "reason": "new baby"}
    missing = await registry.client.patch(url, json=change, headers=registry.admin)
    assert missing.status_code == 428
    stale = await registry.client.patch(url, json=change, headers={**registry.admin, "If-Match": '"7"'})
    assert stale.status_code == 412
    assert stale.json()["current_version"] == 1
    done = await registry.client.patch(url, json=change, headers={**registry.admin, "If-Match": '"1"'})
    assert done.status_code == 200
    assert done.json()["household_size"] == 5
    assert done.headers["ETag"] == '"2"'
    again = await registry.client.patch(url, json=change, headers={**registry.admin, "If-Match": '"1"'})
    assert again.status_code == 412


async def test_patch_requires_reason_and_refuses_unknown_fields(registry) -> None:
    created = await _created(registry)
    url = f"/v1/participants/{created['id']}"
    headers = {**registry.admin, "If-Match": '"1"'}
    no_reason = await registry.client.patch(url, json={"household_size": 5}, headers=headers)
    assert no_reason.status_code == 422
    assert no_reason.json()["errors"][0]["field"] == "reason"
    nik_change = await registry.client.patch(url, json={"nik": WOMAN_NIK, "reason": "typo"}, headers=headers)
    assert nik_change.status_code == 422
    assert nik_change.json()["errors"][0]["rule"] == "extra_forbidden"
    contradicting = await registry.client.patch(
        url, json={"birth_date": "1991-05-12", "reason": "typo"}, headers=headers
    )
    assert {(e["field"], e["rule"]) for e in contradicting.json()["errors"]} == {("nik", "nik_birth_date_mismatch")}


async def test_history_names_fields_not_values_and_update_is_announced(registry) -> None:
    created = await _created(registry)
    url = f"/v1/participants/{created['id']}"
    await registry.client.patch(
        url,
        json={"full_name": "Siti Rahmawati Putri", "baseline_monthly_income": 950_000, "reason": "verified at visit"},
        headers={**registry.admin, "If-Match": '"1"'},
    )
    history = await registry.client.get(f"{url}/history", headers=registry.integrator)
    assert [(h["version"], h["action"]) for h in history.json()] == [(1, "registered"), (2, "updated")]
    assert history.json()[1]["changed_fields"] == ["baseline_monthly_income", "full_name"]
    assert history.json()[1]["actor"] == "dev-admin"
    assert "Putri" not in history.text
    assert "950000" not in history.text
    [updated] = await outbox_events(registry.runtime, "participants", "participant.updated")
    assert updated["data"]["version"] == 2
    assert updated["data"]["changed_fields"] == [
        "baseline_monthly_income",
        "full_name",
    ]
    assert "Putri" not in str(updated)


async def test_status_transitions_are_validated(registry) -> None:
    created = await _created(registry)
    url = f"/v1/participants/{created['id']}/status"
    skip = await registry.client.post(
        url, json={"status": "graduated", "reason_code": "manual", "reason": "skip ahead"}, headers=registry.admin
    )
    assert skip.status_code == 422
    assert skip.json()["errors"][0]["rule"] == "graduation_only_by_decision"
    active = await registry.client.post(
        url, json={"status": "active", "reason_code": "verified", "reason": "matched in DTSEN"}, headers=registry.admin
    )
    assert active.status_code == 200
    assert active.json()["status"] == "active"
    assert active.json()["version"] == 2
    again = await registry.client.post(
        url, json={"status": "active", "reason_code": "verified", "reason": "again"}, headers=registry.admin
    )
    assert again.status_code == 422
    assert again.json()["errors"][0]["rule"] == "transition_not_allowed"
    bad_code = await registry.client.post(
        url, json={"status": "exited", "reason_code": "Moved Away!", "reason": "moved"}, headers=registry.admin
    )
    assert bad_code.status_code == 422
    assert bad_code.json()["errors"][0]["field"] == "reason_code"
    [changed] = await outbox_events(registry.runtime, "participants", "participant.status_changed")
    assert changed["data"]["from_status"] == "candidate"
    assert changed["data"]["to_status"] == "active"
    assert changed["data"]["reason_code"] == "verified"
    assert "DTSEN" not in str(changed)


async def test_erasure_blanks_personal_fields_and_keeps_facts(registry, auth) -> None:
    created = await _created(registry)
    url = f"/v1/participants/{created['id']}"
    refused = await registry.client.post(f"{url}/erasure", json={"reason": "asked"}, headers=registry.integrator)
    assert refused.status_code == 403
    erased = await registry.client.post(
        f"{url}/erasure", json={"reason": "request under UU PDP"}, headers=registry.admin
    )
    assert erased.status_code == 200, erased.text
    body = erased.json()
    assert body["nik"] is None
    assert body["full_name"] is None
    assert body["kk_number"] is None
    assert body["birth_date"] is None
    assert body["baseline_monthly_income"] is None
    assert body["status"] == "erased"
    assert body["erased_at"]
    assert body["region_code"] == "1371011001"
    assert body["birth_year"] == 1990
    assert body["dtsen_decile"] == 1
    [changed] = await outbox_events(registry.runtime, "participants", "participant.status_changed")
    assert changed["data"]["to_status"] == "erased"
    assert changed["data"]["reason_code"] == "erasure_requested"
    # the NIK token went too: the same person may register again
    again = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    assert again.status_code == 201
    assert KK not in erased.text
