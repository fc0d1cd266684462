"""The OpenAPI document as the server really answers, written once for every service's app:

- the bearer JWT security scheme (`bearerAuth`), required by every operation whose route declares a
  non-public policy (pena.access) and explicitly absent (`security: []`) on public ones;
- every error as RFC 9457 `application/problem+json` with PENA's `errors[]` (pena.problems), for each
  status a route can answer: 422 replaces FastAPI's default `detail` array, 401/403/429 on
  authenticated routes, 404 on routes with a path id, 409/400 with an Idempotency-Key header,
  412/428 with an If-Match header, 413 on routes taking a body, 415 on routes taking several media
  types, 503 (database away) on every non-public route;
- `text/csv` answers as strings, not JSON;
- model examples as the models state them: FastAPI drops every null from the document it builds
  (`exclude_none`), nulls inside examples too, which leaves an example without its required nullable
  fields; each schema's `examples` are put back from the pydantic model of the same title;
- an example on a JSON list (a request body or answer that is an array of a schema with examples):
  the first example of that schema, in a list (models carry their own examples; pena.pagination.Page
  derives its own from its item's);
- short operation ids, `<tag>_<function name>` (`operation_id`).

`document_the_wire(app)` wraps `app.openapi`, like `pena.access.publish_policies`."""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import PydanticSchemaGenerationError, TypeAdapter

from pena.access import HTTP_METHODS, _routes, policy_of

SCHEME = "bearerAuth"
PROBLEM_JSON = "application/problem+json"
PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}

PROBLEM_SCHEMAS: dict[str, Any] = {
    "FieldError": {
        "type": "object",
        "title": "FieldError",
        "description": "One refused input: the field (dotted path; null when not tied to one), the rule it broke "
        "and a message. `in` says where the field was (body, query, path, header) for request validation.",
        "properties": {
            "field": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "rule": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "message": {"anyOf": [{"type": "string"}, {"type": "null"}]},
            "in": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["field", "rule", "message"],
    },
    "Problem": {
        "type": "object",
        "title": "Problem",
        "description": "RFC 9457 problem details. `errors` lists refused fields (validation); other members "
        "may be added per problem type (e.g. `existing_id`, `current_version`).",
        "properties": {
            "type": {"type": "string", "description": "a URI naming the problem type"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "the request path"},
            "request_id": {"type": "string"},
            "errors": {"type": "array", "items": {"$ref": "#/components/schemas/FieldError"}},
        },
        "required": ["type", "title", "status"],
        "additionalProperties": True,
        "example": {
            "type": "https://pena.kemensos.go.id/problems/validation",
            "title": "Validation failed",
            "status": 422,
            "detail": "invalid input: nik",
            "instance": "/v1/participants",
            "errors": [{"field": "nik", "in": "body", "rule": "string_pattern_mismatch", "message": "16 digits"}],
        },
    },
}

DESCRIPTIONS = {
    400: "Bad request (e.g. an Idempotency-Key longer than 200 characters)",
    401: "No valid bearer token",
    403: "The token lacks the permission or the reach for this record",
    404: "No such record (or it is outside your unit)",
    409: "Conflict: the record's state or a concurrent request with the same Idempotency-Key",
    412: "If-Match does not match the record's current ETag",
    413: "The request body is larger than allowed",
    415: "Unsupported media type",
    422: "Validation failed: `errors[]` names each field and rule",
    428: "If-Match is required",
    429: "Rate limit exceeded (see Retry-After)",
    503: "The database is not reachable; retry shortly (see Retry-After)",
}


class CsvResponse(Response):
    """`response_class=CsvResponse` documents a route's answer as `text/csv` (a string); the route may
    still return its own `Response(body, media_type="text/csv; charset=utf-8")`."""

    media_type = "text/csv"


def operation_id(route: APIRoute) -> str:
    """`<first tag>_<function name>`: short, stable and unique per app (a test asserts it)."""
    tag = re.sub(r"\W+", "_", str(route.tags[0])).strip("_").lower() if route.tags else ""
    return f"{tag}_{route.name}" if tag else route.name


def _problem_response(status: int) -> dict[str, Any]:
    return {"description": DESCRIPTIONS[status], "content": {PROBLEM_JSON: {"schema": PROBLEM_REF}}}


def _header_names(operation: dict[str, Any]) -> set[str]:
    return {p["name"].lower() for p in operation.get("parameters", []) if p.get("in") == "header"}


def _statuses(path: str, operation: dict[str, Any], public: bool) -> list[int]:
    statuses = [422]
    if not public:
        statuses += [401, 403, 429, 503]
    if "{" in path:
        statuses.append(404)
    headers = _header_names(operation)
    if "idempotency-key" in headers:
        statuses += [400, 409]
    if "if-match" in headers:
        statuses += [412, 428]
    body = operation.get("requestBody")
    if body is not None:
        statuses.append(413)
        if len(body.get("content", {})) > 1:
            statuses.append(415)
    return sorted(set(statuses))


def _typed_csv(operation: dict[str, Any]) -> None:
    for response in operation.get("responses", {}).values():
        content = response.get("content", {})
        for media in list(content):
            if media.split(";")[0].strip() == "text/csv":
                content[media] = {"schema": {"type": "string"}} | {
                    k: v for k, v in content[media].items() if k != "schema"
                }
                if "$ref" not in content.get("application/json", {}).get("schema", {}):
                    content.pop("application/json", None)  # FastAPI's untyped default, not a declared model


def _list_examples(operation: dict[str, Any], schemas: dict[str, Any]) -> None:
    bodies = [operation.get("requestBody", {})] + [
        response for status, response in operation.get("responses", {}).items() if status.startswith("2")
    ]
    for body in bodies:
        for media in body.get("content", {}).values():
            schema = media.get("schema", {})
            ref = schema.get("items", {}).get("$ref") if schema.get("type") == "array" else None
            examples = schemas.get(str(ref).rsplit("/", 1)[-1], {}).get("examples") if ref else None
            if examples and "example" not in media and "examples" not in media:
                media["example"] = [examples[0]]


def model_examples(app: FastAPI) -> dict[str, list[Any]]:
    """The `examples` of every model the app's routes take or answer (nested ones too), by schema
    title, as pydantic writes them (nulls kept)."""
    found: dict[str, list[Any]] = {}
    for context in _routes(app):
        route = getattr(context, "original_route", context)  # FastAPI >= 0.16x: a RouteContext
        if not isinstance(route, APIRoute):
            continue
        types = [route.response_model, *(r.get("model") for r in route.responses.values() if isinstance(r, dict))]
        if route.body_field is not None:
            types.append(route.body_field.field_info.annotation)
        for kind in types:
            if kind is None:
                continue
            try:
                schema = TypeAdapter(kind).json_schema()
            except PydanticSchemaGenerationError:
                continue
            for part in [schema, *schema.get("$defs", {}).values()]:
                if "examples" in part and "title" in part:
                    found[part["title"]] = part["examples"]
    return found


def refine(
    document: dict[str, Any],
    public_operations: dict[tuple[str, str], bool],
    examples: dict[str, list[Any]] | None = None,
) -> dict[str, Any]:
    """Rewrites a FastAPI-built document in place (and returns it); `public_operations` maps
    (METHOD, path) to whether the route is public (None policy counts as authenticated: fail closed);
    `examples` (model_examples) restores the models' examples FastAPI stripped the nulls from."""
    components = document.setdefault("components", {})
    components.setdefault("securitySchemes", {})[SCHEME] = {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "`pena token --role admin` prints a local dev token",
    }
    schemas = components.setdefault("schemas", {})
    schemas.pop("HTTPValidationError", None)
    schemas.pop("ValidationError", None)
    schemas.update(PROBLEM_SCHEMAS)
    for schema in schemas.values():
        if "examples" in schema and schema.get("title") in (examples or {}):
            schema["examples"] = (examples or {})[schema["title"]]
    for path, item in document.get("paths", {}).items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            public = public_operations.get((method.upper(), path), False)
            operation["security"] = [] if public else [{SCHEME: []}]
            responses = operation.setdefault("responses", {})
            for status in _statuses(path, operation, public):
                declared = responses.get(str(status))
                if status == 422 or declared is None:
                    responses[str(status)] = _problem_response(status) | (
                        {"description": declared["description"]} if declared and status != 422 else {}
                    )
                else:  # declared by the route: make sure it carries the problem schema
                    declared.setdefault("content", {}).setdefault(PROBLEM_JSON, {}).setdefault("schema", PROBLEM_REF)
            _typed_csv(operation)
            _list_examples(operation, schemas)
    return document


def document_the_wire(app: FastAPI) -> None:
    """Makes `app.openapi()` return the refined document (built once, then cached by FastAPI)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        public = {
            (method, route.path): (declared is not None and declared.scope == "public")
            for route in _routes(app)
            if hasattr(route, "dependant")
            for declared in [policy_of(route)]
            for method in route.methods or ()
        }
        app.openapi_schema = refine(build(), public, model_examples(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
