"""The audit you can read (issue 13, item 5): `GET /v1/audit`, mounted by the kernel on every app,
with filters and keyset pages, for `audit:read` with national reach only; and `audit_subjects`, one
entry per subject id of a list read, in one statement. Real PostgreSQL behind the app."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import select

from pena.audit import audit_row, audit_subjects, record_audits
from pena.auth import Principal
from pena.runtime import Runtime
from pena.tables import audit_log
from tests.conftest import RuntimeFactory
from tests.support import stand_in

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
Auth = Callable[..., dict[str, str]]


def reader(subject: str) -> Principal:
    return Principal(subject=subject, client_id="app", roles=frozenset({"verifier"}), scopes=frozenset(), unit="13")


def entry(actor: str, action: str, subject_id: str | None, minutes: int) -> dict[str, Any]:
    row = audit_row(actor=reader(actor), action=action, subject_type="participant", subject_id=subject_id)
    return row | {"at": T0 + timedelta(minutes=minutes)}


async def seeded(make_runtime: RuntimeFactory, *names: str) -> Runtime:
    runtime = await make_runtime([stand_in(n) for n in names or ("participants",)])
    async with runtime.service(names[0] if names else "participants").db.transaction() as session:
        await record_audits(
            session,
            [
                entry("ana", "participant.read", "p-1", 0),
                entry("ana", "participant.update", "p-1", 10),
                entry("budi", "participant.read", "p-2", 20),
                entry("budi", "participant.read", "p-1", 30),
                entry("citra", "participant.export", None, 40),
            ],
        )
    return runtime


def subjects(body: dict[str, Any]) -> list[tuple[str, str | None]]:
    return [(e["actor"], e["subject_id"]) for e in body["items"]]


async def test_the_audit_log_is_read_with_filters_newest_first(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    client = api(await seeded(make_runtime))
    admin = auth("admin", sub="auditor-1")
    everything = await client.get("/v1/audit", headers=admin)
    assert everything.status_code == 200, everything.text
    assert subjects(everything.json()) == [
        ("citra", None),
        ("budi", "p-1"),
        ("budi", "p-2"),
        ("ana", "p-1"),
        ("ana", "p-1"),
    ]
    first = everything.json()["items"][-1]
    assert first["action"] == "participant.read"
    assert first["subject_type"] == "participant"
    assert first["roles"] == "verifier"
    assert first["unit"] == "13"

    async def query(**params: str) -> list[tuple[str, str | None]]:
        r = await client.get("/v1/audit", params=params, headers=admin)
        assert r.status_code == 200, r.text
        return subjects(r.json())

    assert await query(subject_type="participant", subject_id="p-1") == [
        ("budi", "p-1"),
        ("ana", "p-1"),
        ("ana", "p-1"),
    ]
    assert await query(actor="budi") == [("budi", "p-1"), ("budi", "p-2")]
    assert await query(action="participant.update") == [("ana", "p-1")]
    window = {"since": (T0 + timedelta(minutes=10)).isoformat(), "until": (T0 + timedelta(minutes=30)).isoformat()}
    assert await query(**window) == [("budi", "p-2"), ("ana", "p-1")]  # since inclusive, until exclusive
    assert await query(actor="budi", subject_type="participant", subject_id="p-2") == [("budi", "p-2")]
    assert await query(actor="nobody") == []


async def test_pages_follow_the_cursor_without_gaps_or_repeats(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    client = api(await seeded(make_runtime))
    admin = auth("admin")
    seen: list[int] = []
    cursor: str | None = None
    pages = 0
    while True:
        r = await client.get("/v1/audit", params={"limit": "2"} | ({"cursor": cursor} if cursor else {}), headers=admin)
        assert r.status_code == 200, r.text
        pages += 1
        seen += [e["id"] for e in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == 3
    assert len(seen) == 5
    assert seen == sorted(seen, reverse=True)
    assert len(set(seen)) == 5
    bad = await client.get("/v1/audit", params={"cursor": "bm90LWpzb24"}, headers=admin)
    assert bad.status_code == 422
    assert bad.json()["errors"][0]["rule"] == "invalid_cursor"


async def test_only_audit_read_with_national_reach_may_read_and_each_read_is_audited(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    runtime = await seeded(make_runtime)
    client = api(runtime)
    assert (await client.get("/v1/audit")).status_code == 401
    for role, claims in [
        ("verifier", {"unit": "national"}),
        ("integrator", {}),
        ("approver", {"unit": "13"}),
        ("facilitator", {}),
        ("centre_operator", {"unit": "lpk-1"}),
    ]:
        r = await client.get("/v1/audit", headers=auth(role, **claims))
        assert r.status_code == 403, (role, r.text)
        assert "audit:read" in r.json()["detail"]
    r = await client.get("/v1/audit", params={"actor": "ana"}, headers=auth("admin", sub="auditor-7"))
    assert r.status_code == 200
    async with runtime.service("participants").db.transaction() as session:
        reads = (await session.execute(select(audit_log).where(audit_log.c.action == "audit.read"))).all()
    assert [(a.actor, a.subject_type, a.details) for a in reads] == [
        ("auditor-7", "audit_log", {"filters": {"actor": "ana"}, "entries": 2})
    ]


async def test_bad_filters_are_422_naming_the_field(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    client = api(await seeded(make_runtime))
    admin = auth("admin")
    cases = [
        ({"subject_id": "p-1"}, "subject_id", "requires_subject_type"),
        ({"since": "2026-01-05T10:00:00Z", "until": "2026-01-05T09:00:00Z"}, "until", "after_since"),
        ({"since": "2026-01-05T10:00:00"}, "since", "timezone_required"),
        ({"service": "monev"}, "service", "one_of"),
    ]
    for params, field, rule in cases:
        r = await client.get("/v1/audit", params=params, headers=admin)
        assert r.status_code == 422, (params, r.text)
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [(e["field"], e["rule"]) for e in r.json()["errors"]] == [(field, rule)], params


async def test_a_process_of_several_services_reads_the_log_the_caller_names(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    client = api(await seeded(make_runtime, "participants", "monev"))
    admin = auth("admin")
    unnamed = await client.get("/v1/audit", headers=admin)
    assert unnamed.status_code == 422
    assert unnamed.json()["errors"][0]["field"] == "service"
    assert unnamed.json()["errors"][0]["rule"] == "required"
    assert len((await client.get("/v1/audit", params={"service": "participants"}, headers=admin)).json()["items"]) == 5
    assert (await client.get("/v1/audit", params={"service": "monev"}, headers=admin)).json()["items"] == []


async def test_audit_subjects_writes_one_entry_per_subject_in_one_statement(make_runtime: RuntimeFactory) -> None:
    runtime = await make_runtime([stand_in("participants")])
    statements: list[str] = []
    db = runtime.service("participants").db

    from sqlalchemy import event

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "audit_log" in statement:
            statements.append(statement)

    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    async with db.transaction() as session:
        written = await audit_subjects(
            session, reader("ana"), "participant.list", "participant", ["p-3", "p-1", "p-3", "p-2"], "monitoring"
        )
        nothing = await audit_subjects(session, reader("ana"), "participant.list", "participant", [])
    event.remove(db.engine.sync_engine, "before_cursor_execute", count)
    assert (written, nothing) == (3, 1)
    assert len(statements) == 2  # one set-based insert per call
    async with db.transaction() as session:
        rows = (await session.execute(select(audit_log).order_by(audit_log.c.id))).all()
    assert [(r.subject_id, r.purpose, r.details) for r in rows] == [
        ("p-3", "monitoring", None),
        ("p-1", "monitoring", None),
        ("p-2", "monitoring", None),
        (None, None, {"subjects": 0}),
    ]
    assert {r.actor for r in rows} == {"ana"}
