"""Kernel access on a real app and database: the per-subject rate limit (after authentication, bounded
memory) and route policies (permission 403, reach none 403, national-only routes, objects 404)."""

from __future__ import annotations

import secrets
from typing import Annotated

import httpx
from fastapi import APIRouter

from pena.access import (
    ReachDep,
    covers_region,
    list_region_prefix,
    policy,
    publish_policies,
    undeclared_operations,
    undeclared_routes,
)
from pena.auth import Principal
from pena.http.app import create_app
from pena.problems import not_found
from tests.kernel import probe

THING = {"participant_id": "p", "seq": 1}


def client_on(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://t")


async def test_rate_limit_keys_on_the_verified_subject_not_the_header(make_runtime, auth, settings) -> None:
    limited = settings.model_copy(update={"rate_limit_per_minute": 3})
    runtime = await make_runtime([probe.publisher], settings_=limited)
    app = create_app(runtime)
    client = client_on(app)
    first = await client.post("/v1/probe/things", json=THING, headers=auth("admin", sub="alice"))
    assert first.status_code == 201
    assert len(app.state.rate_limiter) == 1
    # random, unverifiable Authorization headers: each is refused by authentication (401), and none
    # of them gets a bucket (before, each was a fresh bucket of its own)
    for _ in range(20):
        random_header = {"Authorization": f"Bearer {secrets.token_hex(8)}"}
        r = await client.post("/v1/probe/things", json=THING, headers=random_header)
        assert r.status_code == 401
    assert len(app.state.rate_limiter) == 1
    # one subject: three requests pass, the fourth is 429 problem+json, also with a brand-new token
    for _ in range(2):
        r = await client.post("/v1/probe/things", json=THING, headers=auth("admin", sub="alice"))
        assert r.status_code == 201
    over = await client.post("/v1/probe/things", json=THING, headers=auth("admin", sub="alice"))
    assert over.status_code == 429
    assert over.headers["content-type"].startswith("application/problem+json")
    assert over.json()["type"].endswith("rate-limited")
    assert int(over.headers["retry-after"]) >= 1
    # another subject has its own bucket
    assert (await client.post("/v1/probe/things", json=THING, headers=auth("admin", sub="bob"))).status_code == 201
    assert len(app.state.rate_limiter) == 2


async def test_rate_limit_memory_is_bounded(make_runtime, auth, settings) -> None:
    small = settings.model_copy(update={"rate_limit_per_minute": 1000, "rate_limit_max_subjects": 5})
    runtime = await make_runtime([probe.publisher], settings_=small)
    app = create_app(runtime)
    client = client_on(app)
    for i in range(25):
        r = await client.post("/v1/probe/things", json=THING, headers=auth("admin", sub=f"subject-{i}"))
        assert r.status_code == 201
        assert len(app.state.rate_limiter) <= 5
    assert app.state.rate_limiter.max_subjects == 5
    assert len(app.state.rate_limiter) == 5


def scoped_router() -> APIRouter:
    router = APIRouter()

    @router.get("/v1/scoped/records/{code}")
    async def read(
        code: str,
        reach: ReachDep,
        _: Annotated[Principal, policy("participants:read", "region")],
    ) -> dict[str, str]:
        if not covers_region(reach, code):
            raise not_found("record", code)
        return {"code": code}

    @router.get("/v1/scoped/records")
    async def listing(
        reach: ReachDep,
        _: Annotated[Principal, policy("participants:read", "region")],
        region_prefix: str | None = None,
    ) -> dict[str, str | None]:
        return {"prefix": list_region_prefix(reach, region_prefix)}

    @router.put("/v1/scoped/policy", dependencies=[policy("graduation:read", "national")])
    async def national_only() -> dict[str, str]:
        return {"ok": "yes"}

    return router


async def test_route_policies_on_a_real_app(make_runtime, auth) -> None:
    runtime = await make_runtime([probe.publisher])
    app = create_app(runtime)
    app.include_router(scoped_router())
    client = client_on(app)
    record = "/v1/scoped/records/1371011001"
    # role, unit -> (read record in 1371, list prefix or status, national route)
    table: list[tuple[str, dict[str, str], int, object, int]] = [
        ("admin", {}, 200, "", 200),
        ("integrator", {}, 200, "", 200),
        ("verifier", {}, 403, 403, 403),  # no unit: nothing, never national
        ("verifier", {"unit": " "}, 403, 403, 403),  # empty unit
        ("verifier", {"unit": "abc"}, 403, 403, 403),  # malformed unit
        ("verifier", {"unit": "13.71"}, 200, "1371", 403),
        ("verifier", {"unit": "1372"}, 404, "1372", 403),  # another regency: 404 like a missing record
        ("verifier", {"unit": "national"}, 200, "", 200),
        ("facilitator", {}, 404, None, 403),  # own assignments only: no region records
        ("facilitator", {"unit": "1371"}, 200, "1371", 403),
        ("centre_operator", {"unit": "lpk-1"}, 404, None, 403),
        ("centre_operator", {}, 403, 403, 403),
    ]
    for role, claims, read_status, listed, national_status in table:
        headers = auth(role, sub=f"{role}-{claims.get('unit', 'none')}", **claims)
        why = f"{role} {claims}"
        r = await client.get(record, headers=headers)
        assert r.status_code == read_status, why
        if r.status_code != 200:
            assert r.headers["content-type"].startswith("application/problem+json"), why
        r = await client.get("/v1/scoped/records", headers=headers)
        if isinstance(listed, int):
            assert r.status_code == listed, why
        else:
            assert r.status_code == 200, why
            assert r.json() == {"prefix": listed}, why
        national = await client.put("/v1/scoped/policy", headers=headers)
        assert national.status_code == national_status, why
    # a permission the role lacks is 403 naming it
    r = await client.put("/v1/scoped/policy", headers=auth("centre_operator", unit="lpk-1"))
    assert r.status_code == 403
    assert "graduation:read" in r.json()["detail"]
    # the scoped routes are declared; the probe's own route is not (it uses plain `require`)
    missing = undeclared_routes(app)
    assert not [m for m in missing if "/v1/scoped/" in m]
    assert "POST /v1/probe/things" in missing
    # and the OpenAPI document says the same
    publish_policies(app)
    document = (await client.get("/openapi.json")).json()
    assert document["paths"]["/v1/scoped/policy"]["put"]["x-pena-policy"] == {
        "permission": "graduation:read",
        "scope": "national",
    }
    assert "POST /v1/probe/things" in undeclared_operations(document)
    assert not [m for m in undeclared_operations(document) if "/v1/scoped/" in m]
