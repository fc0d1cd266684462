"""Households (KPM): every participant links to one family by its KK token; at most
PENA_HOUSEHOLD_ACTIVE_LIMIT (default 1) members of one family in the programme (candidate, active) at
once, on registration, on a KK change and in the import, race-safe; events carry the family."""

from __future__ import annotations

import asyncio
import csv
import io

import pytest
from sqlalchemy import select, text

from pena.auth import Principal
from pena.problems import Problem
from services.participants import households
from services.participants.identity import kk_token
from services.participants.models import Household, Participant
from services.participants.registration import register
from services.participants.schemas import ParticipantCreate
from tests.participants.support import KK, MAN_KK, man, woman
from tests.support import drain_relay, in_service, outbox_data

KEY = "dev-only-not-a-secret"  # the dev NIK/KK HMAC key the test settings use


async def _post(registry, body: dict, headers: dict | None = None):
    return await registry.client.post("/v1/participants", json=body, headers=headers or registry.admin)


async def test_a_second_member_of_one_family_is_refused_naming_the_first(registry) -> None:
    first = await _post(registry, woman())
    assert first.status_code == 201, first.text
    second = await _post(registry, man(kk_number=KK))
    assert second.status_code == 409
    assert second.headers["content-type"].startswith("application/problem+json")
    problem = second.json()
    assert (problem["type"].rsplit("/", 1)[-1], problem["existing_id"], problem["limit"]) == (
        "household_limit",
        first.json()["id"],
        1,
    )
    # nothing of the refused member was stored, and both would belong to one household
    rows = await in_service(registry.runtime, "participants", lambda s: _all(s, select(Participant)))
    assert len(rows) == 1
    household_id = first.json()["household_id"]
    assert household_id
    assert rows[0].household_id == household_id
    # another family registers freely
    other = await _post(registry, man())
    assert other.status_code == 201
    assert other.json()["household_id"] not in (None, household_id)


async def test_the_409_names_no_member_outside_the_callers_reach(registry, auth) -> None:
    first = await _post(registry, woman())
    assert first.status_code == 201
    # a writer of Jakarta (31) registering someone with a Padang family card, living in Jakarta
    jakarta = auth("integrator", unit="31")
    refused = await _post(registry, man(kk_number=KK, region_code="3171011001"), headers=jakarta)
    assert refused.status_code == 409, refused.text
    assert refused.json().get("existing_id") is None
    assert first.json()["id"] not in refused.text


async def test_a_member_who_left_the_programme_makes_room(registry) -> None:
    first = (await _post(registry, woman())).json()
    exited = await registry.client.post(
        f"/v1/participants/{first['id']}/status",
        json={"status": "exited", "reason_code": "moved_away", "reason": "moved to another province"},
        headers=registry.admin,
    )
    assert exited.status_code == 200
    second = await _post(registry, man(kk_number=KK))
    assert second.status_code == 201, second.text
    assert second.json()["household_id"] == first["household_id"]


async def test_the_limit_is_a_setting(registry, monkeypatch) -> None:
    monkeypatch.setattr(households, "limit", lambda: 2)
    assert (await _post(registry, woman())).status_code == 201
    assert (await _post(registry, man(kk_number=KK))).status_code == 201
    third = await _post(registry, woman(nik="1371015205900003", full_name="Dewi", kk_number=KK))
    assert third.status_code == 409
    assert third.json()["limit"] == 2


async def test_a_kk_change_into_a_full_family_is_refused_and_into_another_moves_the_household(registry) -> None:
    siti = (await _post(registry, woman())).json()
    budi = (await _post(registry, man())).json()
    url = f"/v1/participants/{budi['id']}"
    into_full = await registry.client.patch(
        url,
        json={"kk_number": KK, "reason": "joined his wife's family card"},
        headers={**registry.admin, "If-Match": '"1"'},
    )
    assert into_full.status_code == 409
    assert (into_full.json()["type"].rsplit("/", 1)[-1], into_full.json()["existing_id"]) == (
        "household_limit",
        siti["id"],
    )
    new_card = "1371010101200007"
    moved = await registry.client.patch(
        url, json={"kk_number": new_card, "reason": "new family card"}, headers={**registry.admin, "If-Match": '"1"'}
    )
    assert moved.status_code == 200, moved.text
    assert moved.json()["household_id"] not in (budi["household_id"], siti["household_id"], None)
    updated = list(await outbox_data(registry.runtime, "participants", "participant.updated"))
    assert [(e["household_id"], e["kk_token"]) for e in updated] == [
        (moved.json()["household_id"], kk_token(new_card, KEY))
    ]


async def test_the_household_read_shows_member_ids_and_status_only_within_reach(registry, auth) -> None:
    siti = (await _post(registry, woman())).json()
    url = f"/v1/households/{siti['household_id']}"
    seen = await registry.client.get(url, headers=registry.admin)
    assert seen.status_code == 200, seen.text
    assert seen.json()["members"] == [{"participant_id": siti["id"], "status": "candidate"}]
    assert (seen.json()["active_members"], seen.json()["active_limit"]) == (1, 1)
    assert "Siti" not in seen.text
    assert KK not in seen.text
    padang = await registry.client.get(url, headers=auth("verifier", unit="13.71"))
    assert padang.status_code == 200
    jakarta = await registry.client.get(url, headers=auth("verifier", unit="31"))
    assert jakarta.status_code == 404
    missing = await registry.client.get("/v1/households/no-such-household", headers=registry.admin)
    assert missing.status_code == 404
    no_token = await registry.client.get(url)
    assert no_token.status_code == 401


async def test_events_carry_the_family_and_erasure_drops_the_kk_token(registry) -> None:
    siti = (await _post(registry, woman())).json()
    registered = await outbox_data(registry.runtime, "participants", "participant.registered")
    assert [(e["household_id"], e["kk_token"]) for e in registered] == [(siti["household_id"], kk_token(KK, KEY))]
    assert await drain_relay(registry.runtime, "participants") == 1  # published: kept until retention...
    active = await registry.client.post(
        f"/v1/participants/{siti['id']}/status",
        json={"status": "active", "reason_code": "verified", "reason": "documents checked"},
        headers=registry.admin,
    )
    assert active.status_code == 200
    erased = await registry.client.post(
        f"/v1/participants/{siti['id']}/erasure", json={"reason": "UU PDP request"}, headers=registry.admin
    )
    assert erased.status_code == 200
    assert erased.json()["household_id"] == siti["household_id"]  # the family link is not personal data
    changes = await outbox_data(registry.runtime, "participants", "participant.status_changed")
    assert [(c["to_status"], c["household_id"], c["kk_token"]) for c in changes] == [
        ("active", siti["household_id"], kk_token(KK, KEY)),
        ("erased", siti["household_id"], None),
    ]
    # ...or the erasure: the published events with the income and KK token are gone
    assert await outbox_data(registry.runtime, "participants", "participant.registered") == []
    # the family's last member was erased: its KK token is gone from the registry too
    stored = await in_service(registry.runtime, "participants", lambda s: s.get(Household, siti["household_id"]))
    assert stored is not None
    assert stored.kk_token is None


async def test_erasing_one_member_keeps_the_token_of_a_family_with_others(registry, monkeypatch) -> None:
    monkeypatch.setattr(households, "limit", lambda: 2)
    siti = (await _post(registry, woman())).json()
    assert (await _post(registry, man(kk_number=KK))).status_code == 201
    erased = await registry.client.post(
        f"/v1/participants/{siti['id']}/erasure", json={"reason": "UU PDP request"}, headers=registry.admin
    )
    assert erased.status_code == 200
    stored = await in_service(registry.runtime, "participants", lambda s: s.get(Household, siti["household_id"]))
    assert stored is not None
    assert stored.kk_token == kk_token(KK, KEY)


async def test_the_import_refuses_a_second_member_as_a_row_error(registry) -> None:
    header = "nik,kk_number,full_name,birth_date,sex,region_code,consent_purpose,consent_given_on,consent_recorded_by\n"
    consent = "PENA programme participation,2026-10-01,fac-1"
    content = (
        header
        + f"1371015205900001,{KK},Siti Rahmawati,1990-05-12,F,1371011001,{consent}\n"
        + f"1371010301850002,{KK},Budi Santoso,1985-01-03,M,1371011001,{consent}\n"  # same family: refused
        + f"1371010301850005,{MAN_KK},Joko,1985-01-03,M,1371011001,{consent}\n"
    ).encode()
    started = await registry.client.post(
        "/v1/participants/imports", files={"file": ("kpm.csv", content, "text/csv")}, headers=registry.admin
    )
    assert started.status_code == 202
    scheduler = registry.runtime.service("participants").scheduler
    assert scheduler is not None
    await scheduler.drain()
    job = (await registry.client.get(f"/v1/participants/imports/{started.json()['id']}", headers=registry.admin)).json()
    assert (job["created_rows"], job["duplicate_rows"], job["error_rows"]) == (2, 0, 1)
    errors = await registry.client.get(f"/v1/participants/imports/{job['id']}/errors", headers=registry.admin)
    assert [(r["row"], r["field"], r["rule"]) for r in csv.DictReader(io.StringIO(errors.text))] == [
        ("2", "kk_number", "household_limit")
    ]
    # and a registration of the family's second member afterwards is refused too
    later = await _post(registry, man(kk_number=KK))
    assert later.status_code == 409


async def test_two_concurrent_registrations_of_one_family_leave_exactly_one(registry) -> None:
    """The first registration holds the household row (uncommitted) when the second arrives: the second
    waits on that lock, then counts the committed member and is refused."""
    runtime = registry.runtime
    db = runtime.service("participants").db
    settings = runtime.settings
    actor = Principal(subject="admin", client_id="t", roles=frozenset({"admin"}), scopes=frozenset())
    async with db.sessions() as first:
        siti = await register(
            first, actor=actor, settings=settings, clock=runtime.clock, data=ParticipantCreate(**woman())
        )

        async def second() -> Participant:
            async with db.transaction() as session:
                data = ParticipantCreate(**man(kk_number=KK))
                return await register(session, actor=actor, settings=settings, clock=runtime.clock, data=data)

        running = asyncio.create_task(second())
        waiting = text(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        for _ in range(100):
            if (await in_service(runtime, "participants", lambda s: _scalar(s, waiting))) == 1:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the second registration never waited for the first")
        await first.commit()
    with pytest.raises(Problem) as refused:
        await asyncio.wait_for(running, timeout=10)
    assert (refused.value.status, refused.value.type, refused.value.extra["existing_id"]) == (
        409,
        "household_limit",
        siti.id,
    )
    rows = await in_service(runtime, "participants", lambda s: _all(s, select(Participant)))
    assert [p.id for p in rows] == [siti.id]


async def test_concurrent_requests_of_two_members_one_wins(registry) -> None:
    answers = await asyncio.gather(_post(registry, woman()), _post(registry, man(kk_number=KK)))
    assert sorted(a.status_code for a in answers) == [201, 409]
    winner = next(a for a in answers if a.status_code == 201).json()
    loser = next(a for a in answers if a.status_code == 409).json()
    assert loser["existing_id"] == winner["id"]


async def _all(session, statement) -> list:
    return list((await session.execute(statement)).scalars().all())


async def _scalar(session, statement) -> int:
    return int((await session.execute(statement)).scalar_one())


async def test_the_migration_backfills_one_household_per_kk_token(settings) -> None:
    """Rows registered before households: one household per distinct KK token, and one of its own for
    a participant without a token (erased before), so every participant links to exactly one."""
    from alembic import command

    from composition.catalog import load_definitions
    from pena.db import Database, drop_database, ensure_database
    from pena.migrate import _config, migrate

    definition = load_definitions(["participants"])[0]
    url = settings.service_database_url("participants")
    await ensure_database(url)
    db = Database(url, null_pool=True)
    try:
        async with db.engine.begin() as conn:
            await conn.run_sync(lambda sync: command.upgrade(_config(definition, sync), "part_5c1e7a20"))
            for pid, token in (("p-1", "kk-a"), ("p-2", "kk-a"), ("p-3", "kk-b"), ("p-4", None)):
                await conn.execute(
                    text(
                        "INSERT INTO participants (id, kk_token, region_code, assistance_programmes, status, version,"
                        " flagged, created_at, updated_at) VALUES (:id, :kk, '1371011001', '[]', 'active', 1, false,"
                        " now(), now())"
                    ),
                    {"id": pid, "kk": token},
                )
        await migrate(settings, definition)
        async with db.engine.connect() as conn:
            links: dict[str, str] = {
                r[0]: r[1] for r in await conn.execute(text("SELECT id, household_id FROM participants"))
            }
            tokens: dict[str, str | None] = {
                r[0]: r[1] for r in await conn.execute(text("SELECT id, kk_token FROM households"))
            }
        assert all(links.values())
        assert links["p-1"] == links["p-2"]
        assert len({links["p-1"], links["p-3"], links["p-4"]}) == 3
        assert (tokens[links["p-1"]], tokens[links["p-3"]], tokens[links["p-4"]]) == ("kk-a", "kk-b", None)
        assert len(tokens) == 3
    finally:
        await db.dispose()
        await drop_database(url)
