from __future__ import annotations

import json
import logging

from pena.contracts import BY_NAME
from services.participants.settings import get_participants_settings
from tests.participants.support import KK, MAN_NIK, WOMAN_NIK, man, woman
from tests.support import audit_rows, outbox_events, outbox_names

SECRETS = (WOMAN_NIK, MAN_NIK, KK, "Siti Rahmawati", "Budi Santoso", "1990-05-12")


def _everything_logged(caplog) -> str:
    parts = []
    for record in caplog.records:
        parts.append(record.getMessage())
        parts.append(json.dumps({k: str(v) for k, v in record.__dict__.items()}))
    return "\n".join(parts)


async def test_events_and_logs_carry_no_nik_kk_or_name(registry, caplog, capsys) -> None:
    caplog.set_level(logging.DEBUG)
    created = await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)
    await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)  # 409
    await registry.client.post("/v1/participants", json=man(birth_date="1985-01-04"), headers=registry.admin)  # 422
    await registry.client.post("/v1/participants", json=man(), headers=registry.admin)
    await registry.client.post("/v1/participants/lookup", json={"nik": WOMAN_NIK}, headers=registry.integrator)
    await registry.client.patch(
        f"/v1/participants/{created.json()['id']}",
        json={"full_name": "Siti Rahmawati", "kk_number": "1371012001150099", "reason": "new family card"},
        headers={**registry.admin, "If-Match": '"1"'},
    )
    events = await outbox_events(registry.runtime, "participants")
    names = await outbox_names(registry.runtime, "participants")
    assert names == ["participant.registered", "participant.registered", "participant.updated"]
    assert [e["type"] for e in events] == [BY_NAME[name].type for name in names]
    registered = events[0]["data"]
    assert registered["nik_token"]
    assert registered["region_code"] == "1371011001"
    assert registered["version"] == 1
    wire = json.dumps(events)
    logged = _everything_logged(caplog)
    printed = capsys.readouterr()
    assert caplog.records, "the requests were logged"
    for secret in (*SECRETS, "1371012001150099"):
        assert secret not in wire
        assert secret not in logged
        assert secret not in printed.out + printed.err


async def test_the_masked_nik_hides_what_the_answer_does_not_show(registry) -> None:
    created = (await registry.client.post("/v1/participants", json=woman(), headers=registry.integrator)).json()
    # the integrator has no participants:read_nik: district, birth date (DD+40 MM YY) and serial hidden
    assert created["nik"] == "1371**********01"
    assert created["kk_number"] == "1371**********03"
    masked = created["nik"]
    assert "520590" not in masked
    assert masked[4:14] == "*" * 10
    full = (await registry.client.get(f"/v1/participants/{created['id']}", headers=registry.admin)).json()
    assert full["nik"] == WOMAN_NIK


async def test_lookups_are_rate_limited_per_subject_and_all_audited(registry, auth, monkeypatch) -> None:
    monkeypatch.setenv("PENA_NIK_LOOKUPS_PER_MINUTE", "3")
    get_participants_settings.cache_clear()
    try:
        created = (await registry.client.post("/v1/participants", json=woman(), headers=registry.admin)).json()
        guesser = auth("integrator", sub="guesser")
        answers = [
            await registry.client.post("/v1/participants/lookup", json={"nik": nik}, headers=guesser)
            for nik in (WOMAN_NIK, MAN_NIK, "1371015205900009", WOMAN_NIK)
        ]
        assert [a.status_code for a in answers] == [200, 404, 404, 429]
        assert answers[3].headers["Retry-After"]
        assert answers[3].json()["type"].endswith("rate-limited")
        # another subject has its own bucket
        other = await registry.client.post(
            "/v1/participants/lookup", json={"nik": WOMAN_NIK}, headers=auth("integrator", sub="someone-else")
        )
        assert other.status_code == 200
    finally:
        get_participants_settings.cache_clear()
    lookups = await audit_rows(registry.runtime, "participants", "participant.lookup")
    assert [(r.actor, r.subject_id, r.outcome) for r in lookups] == [
        ("guesser", created["id"], "ok"),
        ("guesser", None, "not_found"),
        ("guesser", None, "not_found"),
        ("someone-else", created["id"], "ok"),
    ]
