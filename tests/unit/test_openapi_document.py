"""The OpenAPI documents say what the server answers (issue 15, item 2): each service's app (as
`pena serve <service>` builds it) and the composed `pena dev` app declare the bearer scheme on every
non-public operation, problem+json (never FastAPI's `detail` array) for every error status a route
can answer, `text/csv` answers as strings, and short unique operation ids."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from fastapi import FastAPI

from composition.catalog import SERVICE_MODULES, build_app
from pena.access import HTTP_METHODS, route_policies
from pena.http.openapi import PROBLEM_JSON
from pena.settings import Settings

SETTINGS = Settings(environment="test", _env_file=None)
APPS = sorted(SERVICE_MODULES) + ["dev"]


def _app(which: str) -> FastAPI:
    return build_app(None if which == "dev" else [which], settings=SETTINGS)


def _operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if method in HTTP_METHODS
    ]


@pytest.fixture(scope="module", params=APPS)
def served(request: pytest.FixtureRequest) -> tuple[FastAPI, dict[str, Any]]:
    app = _app(request.param)
    return app, app.openapi()


def test_operation_ids_are_short_and_unique(served: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = served
    ids = [operation["operationId"] for _, _, operation in _operations(document)]
    assert len(ids) > 5
    assert [i for i, n in Counter(ids).items() if n > 1] == []
    assert [i for i in ids if len(i) >= 40] == []


def test_bearer_scheme_on_every_authenticated_operation(served: tuple[FastAPI, dict[str, Any]]) -> None:
    app, document = served
    assert document["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`pena token --role admin` prints a local dev token",
    }
    policies = route_policies(app)
    checked = 0
    for method, path, operation in _operations(document):
        declared = policies[f"{method} {path}"]
        public = declared is not None and declared.scope == "public"
        assert operation["security"] == ([] if public else [{"bearerAuth": []}]), f"{method} {path}"
        if not public:
            checked += 1
            for status in ("401", "403", "429", "503"):
                assert status in operation["responses"], f"{method} {path} lacks {status}"
    assert checked > 3


def test_every_error_is_declared_as_problem_json(served: tuple[FastAPI, dict[str, Any]]) -> None:
    _, document = served
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas
    assert "ValidationError" not in schemas
    assert schemas["Problem"]["properties"]["errors"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    assert set(schemas["FieldError"]["required"]) == {"field", "rule", "message"}
    for method, path, operation in _operations(document):
        responses = operation["responses"]
        assert "422" in responses
        for status, response in responses.items():
            if (method, path, status) == ("GET", "/readyz", "503"):  # the readiness report, not a problem
                assert response["content"] == {
                    "application/json": {
                        "schema": {"$ref": "#/components/schemas/ReadinessRead"},
                        "example": response["content"]["application/json"]["example"],
                    }
                }
                continue
            if int(status) >= 400:
                assert response["content"][PROBLEM_JSON]["schema"] == {"$ref": "#/components/schemas/Problem"}, (
                    f"{method} {path} {status}"
                )
                assert "application/json" not in response["content"], f"{method} {path} {status}"
        if "{" in path:
            assert "404" in responses, f"{method} {path}"
        headers = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        if "idempotency-key" in headers:
            assert {"400", "409"} <= set(responses), f"{method} {path}"
        if "if-match" in headers:
            assert {"412", "428"} <= set(responses), f"{method} {path}"
        if "requestBody" in operation:
            assert "413" in responses, f"{method} {path}"


def test_concurrency_and_idempotency_statuses_where_the_routes_use_them() -> None:
    """Not vacuous: participants' PATCH uses If-Match, its registration an Idempotency-Key."""
    operations = {(m, p): o for m, p, o in _operations(_app("participants").openapi())}
    assert {"412", "428", "404"} <= set(operations[("PATCH", "/v1/participants/{participant_id}")]["responses"])
    assert {"409", "400"} <= set(operations[("POST", "/v1/participants")]["responses"])
    health = operations[("GET", "/healthz")]
    assert health["security"] == []
    assert "401" not in health["responses"]


def test_csv_answers_are_documented_as_text_csv() -> None:
    operations = {(m, p): o for m, p, o in _operations(_app("participants").openapi())}
    for key in [("GET", "/v1/participants/export.csv"), ("GET", "/v1/participants/imports/{import_id}/errors")]:
        content = operations[key]["responses"]["200"]["content"]
        assert content == {"text/csv": {"schema": {"type": "string"}}}, key
