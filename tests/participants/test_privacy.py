from __future__ import annotations

import json
import logging

from pena.contracts import BY_NAME
from tests.participants.support import KK, MAN_NIK, WOMAN_NIK, man, woman
from tests.support import outbox_events, outbox_names

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
