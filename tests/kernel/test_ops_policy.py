"""The kernel's own routes declare their policy (issue 13, item 1): probes and metrics public, the
clock and the dead letters for operators with national reach; `GET /v1/ops/clock` no longer answers
without a token. Real PostgreSQL behind the app."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from pena.access import Policy, route_policies, undeclared_routes
from pena.http.app import create_app
from pena.runtime import Runtime
from tests.conftest import RuntimeFactory
from tests.support import stand_in

Auth = Callable[..., dict[str, str]]


async def test_every_kernel_route_declares_its_policy(make_runtime: RuntimeFactory) -> None:
    app = create_app(await make_runtime([stand_in("participants")]))
    fastapi_docs = ("/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc")
    assert undeclared_routes(app, public_paths=fastapi_docs) == [], "kernel routes without a declared policy"
    declared = route_policies(app)
    for path in ("/healthz", "/readyz", "/metrics"):
        assert declared[f"GET {path}"] == Policy(None, "public"), path
    assert declared["GET /v1/ops/clock"] == Policy("ops:clock", "national")
    assert declared["PUT /v1/ops/clock"] == Policy("ops:clock", "national")
    assert declared["GET /v1/ops/dead-letters"] == Policy("ops:deadletters", "national")
    assert declared["POST /v1/ops/dead-letters/{service}/replay"] == Policy("ops:deadletters", "national")
    assert declared["GET /v1/audit"] == Policy("audit:read", "national")


async def test_ops_routes_answer_by_their_policy(
    make_runtime: RuntimeFactory, api: Callable[[Runtime], httpx.AsyncClient], auth: Auth
) -> None:
    client = api(await make_runtime([stand_in("participants")]))
    for path in ("/healthz", "/readyz", "/metrics"):
        assert (await client.get(path)).status_code == 200, path
    for method, path in [
        ("GET", "/v1/ops/clock"),
        ("PUT", "/v1/ops/clock"),
        ("GET", "/v1/ops/dead-letters"),
        ("POST", "/v1/ops/dead-letters/participants/replay"),
    ]:
        anonymous = await client.request(method, path, json={"offset": None})
        assert anonymous.status_code == 401, (method, path)
        for role, claims in [("integrator", {}), ("verifier", {"unit": "national"}), ("facilitator", {})]:
            r = await client.request(method, path, json={"offset": None}, headers=auth(role, **claims))
            assert r.status_code == 403, (method, path, role)
    admin = auth("admin")
    clock = await client.get("/v1/ops/clock", headers=admin)
    assert clock.status_code == 200
    assert set(clock.json()) == {"now", "offset"}
    assert (await client.get("/v1/ops/dead-letters", headers=admin)).status_code == 200
