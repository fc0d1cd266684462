"""HTTP plumbing on a real database: problem+json, auth, idempotency keys, health, metrics."""

from __future__ import annotations

import asyncio
import time

import jwt
from sqlalchemy import func, select

from pena.auth import dev_private_key
from tests.kernel import probe


async def client_for(make_runtime, api):
    runtime = await make_runtime([probe.publisher])
    return runtime, api(runtime)


async def test_validation_error_is_problem_json_naming_field_and_rule(make_runtime, api, auth) -> None:
    _, client = await client_for(make_runtime, api)
    r = await client.post("/v1/probe/things", json={"participant_id": "", "seq": -1, "extra": 1}, headers=auth("admin"))
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 422
    assert body["title"] == "Validation failed"
    found = {(e["field"], e["rule"]) for e in body["errors"]}
    assert ("participant_id", "string_too_short") in found
    assert ("seq", "greater_than_equal") in found
    assert ("extra", "extra_forbidden") in found  # unknown fields are refused


async def test_tokens_expired_wrong_audience_wrong_key_or_alg_none_are_401(make_runtime, api, settings) -> None:
    _, client = await client_for(make_runtime, api)
    now = int(time.time())
    good = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": "s",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 60,
    }
    key = dev_private_key(settings)
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    tokens = {
        "expired": jwt.encode(good | {"exp": now - 10}, key, algorithm="RS256"),
        "audience": jwt.encode(good | {"aud": "someone-else"}, key, algorithm="RS256"),
        "issuer": jwt.encode(good | {"iss": "evil"}, key, algorithm="RS256"),
        "wrong key": jwt.encode(good, other_key, algorithm="RS256"),
        "alg none": jwt.encode(good, None, algorithm="none"),  # type: ignore[arg-type]
        "hs256 with public key": jwt.encode(good, "secret", algorithm="HS256"),
        "garbage": "not-a-jwt",
    }
    for why, token in tokens.items():
        r = await client.post(
            "/v1/probe/things", json={"participant_id": "p", "seq": 1}, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 401, why
        assert r.headers["content-type"].startswith("application/problem+json"), why
    r = await client.post("/v1/probe/things", json={"participant_id": "p", "seq": 1})
    assert r.status_code == 401
    r = await client.post(
        "/v1/probe/things",
        json={"participant_id": "p", "seq": 1},
        headers={"Authorization": f"Bearer {jwt.encode(good, key, algorithm='RS256')}"},
    )
    assert r.status_code == 201


async def test_missing_scope_is_403(make_runtime, api, auth) -> None:
    _, client = await client_for(make_runtime, api)
    r = await client.post("/v1/probe/things", json={"participant_id": "p", "seq": 1}, headers=auth("facilitator"))
    assert r.status_code == 403
    assert "training:write" in r.json()["detail"]


async def test_same_idempotency_key_ten_times_at_once_makes_one_resource(make_runtime, api, auth) -> None:
    runtime, client = await client_for(make_runtime, api)
    headers = auth("admin") | {"Idempotency-Key": "k-1"}
    answers = await asyncio.gather(
        *[client.post("/v1/probe/things", json={"participant_id": "p", "seq": 1}, headers=headers) for _ in range(10)]
    )
    assert {r.status_code for r in answers} == {201}
    assert len({r.json()["id"] for r in answers}) == 1
    async with runtime.service("training").db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(probe.things))).scalar_one() == 1
    reused = await client.post("/v1/probe/things", json={"participant_id": "p", "seq": 2}, headers=headers)
    assert reused.status_code == 422
    assert reused.json()["type"].endswith("idempotency-key-reuse")


async def test_health_readiness_metrics_and_request_ids(make_runtime, api) -> None:
    _, client = await client_for(make_runtime, api)
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    ready = await client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["db:training"]["status"] == "ok"
    r = await client.get("/healthz", headers={"X-Request-ID": "req-123", "X-Correlation-ID": "corr-9"})
    assert r.headers["x-request-id"] == "req-123"
    assert r.headers["x-correlation-id"] == "corr-9"
    metrics = await client.get("/metrics")
    assert "pena_http_requests_total" in metrics.text


async def test_oversized_body_is_413(make_runtime, api, auth, settings) -> None:
    _, client = await client_for(make_runtime, api)
    big = "x" * (settings.max_body_bytes + 1)
    r = await client.post("/v1/probe/things", content=big, headers=auth("admin") | {"content-type": "application/json"})
    assert r.status_code == 413
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_file_uploads_have_their_own_larger_cap(make_runtime, api, auth, settings) -> None:
    small = settings.model_copy(update={"max_body_bytes": 1000, "max_upload_bytes": 5000})
    runtime = await make_runtime([probe.publisher], settings_=small)
    client = api(runtime)
    upload = {"file": ("x.csv", b"x" * 2000, "text/csv")}
    passed = await client.post("/v1/probe/things", files=upload, headers=auth("admin"))
    assert passed.status_code == 422  # past the size cap: refused by the route, not the middleware
    too_big = await client.post("/v1/probe/things", files={"file": ("x.csv", b"x" * 6000)}, headers=auth("admin"))
    assert too_big.status_code == 413
    assert too_big.headers["content-type"].startswith("application/problem+json")
    assert too_big.json()["type"].endswith("payload-too-large")
    assert "5000 bytes" in too_big.json()["detail"]
    json_body = await client.post(
        "/v1/probe/things", content="x" * 2000, headers=auth("admin") | {"content-type": "application/json"}
    )
    assert json_body.status_code == 413  # other bodies keep the smaller cap


async def test_database_down_is_503_problem_not_500(make_runtime, api, auth, settings) -> None:
    from pena.db import Database
    from pena.http.app import create_app
    from pena.http.ops import ReadinessRead

    runtime, client = await client_for(make_runtime, api)
    svc = runtime.service("training")
    healthy = svc.db
    svc.db = Database("postgresql+asyncpg://postgres@127.0.0.1:1/nowhere", timeout=1)  # nothing listens there
    try:
        r = await client.post("/v1/probe/things", json={"participant_id": "p", "seq": 1}, headers=auth("admin"))
        assert r.status_code == 503
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["retry-after"]
        ready = await client.get("/readyz")
        assert ready.status_code == 503
        report = ReadinessRead.model_validate(ready.json())  # the body its documented 503 declares
        assert report.status == "not ready"
        assert report.checks["db:training"].status == "down"
        documented = create_app(runtime).openapi()["paths"]["/readyz"]["get"]["responses"]["503"]
        assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ReadinessRead"}
    finally:
        await svc.db.dispose()
        svc.db = healthy


async def test_correlation_id_and_trace_context_follow_the_request_into_the_event(make_runtime, api, auth) -> None:
    from pena.tables import outbox

    runtime, client = await client_for(make_runtime, api)
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    r = await client.post(
        "/v1/probe/things",
        json={"participant_id": "p", "seq": 1},
        headers=auth("admin") | {"X-Correlation-ID": "corr-42", "traceparent": traceparent},
    )
    assert r.status_code == 201
    async with runtime.service("training").db.transaction() as s:
        envelope = (await s.execute(select(outbox.c.envelope))).scalar_one()
    assert envelope["correlationid"] == "corr-42"
    # tracing off (the default): no span of ours, the caller's trace context is passed on as it came
    # (tracing on, the event names the request's server span: tests/e2e/test_trace_across_services.py)
    assert envelope["traceparent"] == traceparent


def test_a_cached_token_still_expires(settings) -> None:
    import pytest

    from pena.auth import TokenVerifier, issue_dev_token
    from pena.problems import Problem

    verifier = TokenVerifier(settings)
    # exp is whole seconds (now truncated + ttl): a 1 s token may have only milliseconds left
    token = issue_dev_token(settings, role="admin", ttl_seconds=3)
    assert verifier.verify(token).subject == "dev-admin"
    assert verifier.verify(token).subject == "dev-admin"  # served from the cache
    expires_at = jwt.decode(token, options={"verify_signature": False})["exp"]
    time.sleep(max(0.0, expires_at - time.time()) + 0.1)
    with pytest.raises(Problem) as refused:
        verifier.verify(token)
    assert refused.value.status == 401


async def test_nul_characters_are_refused_with_the_field_named(make_runtime, api, auth) -> None:
    """PostgreSQL text cannot hold U+0000: a body, query or path value carrying it is a 422 naming
    where it is, not a database error answered with a 500 (found by schemathesis)."""
    runtime, client = await client_for(make_runtime, api)
    r = await client.post("/v1/probe/things", json={"participant_id": "p\u0000", "seq": 1}, headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert [(e["field"], e["in"], e["rule"]) for e in errors] == [("participant_id", "body", "nul_character")]
    r = await client.post("/v1/probe/things?note=a%00b", json={"participant_id": "p", "seq": 2}, headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert [(e["field"], e["in"]) for e in r.json()["errors"]] == [("note", "query")]
    r = await client.post("/v1/ops/dead-letters/a%00b/replay", headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert [(e["field"], e["in"]) for e in r.json()["errors"]] == [("service", "path")]
    # a backslash followed by "u0000" is ordinary text
    r = await client.post("/v1/probe/things", json={"participant_id": "p\\u0000", "seq": 3}, headers=auth("admin"))
    assert r.status_code == 201, r.text
    async with runtime.service("training").db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(probe.things)) == 1


async def test_a_value_the_database_refuses_is_a_422_not_a_500(make_runtime, api, auth) -> None:
    """A safety net behind validation: an integer beyond the column's range reaches PostgreSQL's
    driver; the answer is 422 problem+json, nothing is written, and the service stays healthy."""
    runtime, client = await client_for(make_runtime, api)
    r = await client.post("/v1/probe/things", json={"participant_id": "p", "seq": 2**40}, headers=auth("admin"))
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["errors"][0]["rule"] == "database_data_exception"
    r = await client.post("/v1/probe/things", json={"participant_id": "p", "seq": 1}, headers=auth("admin"))
    assert r.status_code == 201, r.text
    async with runtime.service("training").db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(probe.things)) == 1
