"""The event contracts as integrators see them: each service serves the JSON Schema of the events it
owns at their `dataschema` URL (pena/http/schemas.py, public), and docs/asyncapi.yaml is current and
valid against the official AsyncAPI 3.0.0 JSON Schema, with an example per message, the Kafka headers
and a production server with its security."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import jsonschema
import pytest
import yaml

from composition.catalog import build_app
from pena.asyncapi import render_asyncapi
from pena.contracts import CONTRACTS, SERVICES, EventContract
from pena.contracts.examples import example_event, example_payload
from pena.envelope import CONTENT_TYPE, TYPE_HEADER
from pena.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ASYNCAPI_SCHEMA = Path(__file__).parent / "data" / "asyncapi-3.0.0-without-id.json.gz"


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://pena.test")


def _without_a_required_field(c: EventContract) -> dict[str, Any]:
    data = example_payload(c)
    required = c.json_schema()["required"]
    del data[required[0]]
    return data


def test_dataschema_urls_are_the_served_paths() -> None:
    for c in CONTRACTS:
        assert urlparse(c.dataschema).path == c.schema_path, c.name
        assert c.schema_path == f"/schemas/{c.name}/v{c.version}.json"


@pytest.mark.parametrize("service", SERVICES)
async def test_each_service_serves_the_schemas_of_its_own_events_only(service: str, settings: Settings) -> None:
    app = build_app([service], settings=settings)
    async with _client(app) as client:
        for c in CONTRACTS:
            answer = await client.get(c.schema_path)  # no token: public
            if c.service != service:
                assert answer.status_code == 404, (service, c.name, answer.text)
                assert answer.headers["content-type"].startswith("application/problem+json")
                continue
            assert answer.status_code == 200, (service, c.name, answer.text)
            assert answer.headers["content-type"].startswith("application/schema+json")
            schema = answer.json()
            assert schema["$id"] == c.dataschema
            jsonschema.Draft202012Validator.check_schema(schema)
            validator = jsonschema.Draft202012Validator(schema)
            assert not list(validator.iter_errors(example_event(c)["data"])), c.name
            assert list(validator.iter_errors(_without_a_required_field(c))), c.name
        owned = next(c for c in CONTRACTS if c.service == service)
        for path in (f"/schemas/{owned.name}/v{owned.version + 1}.json", "/schemas/no.such_event/v1.json"):
            assert (await client.get(path)).status_code == 404, path


def test_asyncapi_document_is_current() -> None:
    completed = subprocess.run(
        [sys.executable, "-m", "composition.cli", "asyncapi", "--check"], cwd=ROOT, capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr
    assert (ROOT / "docs" / "asyncapi.yaml").read_text() == render_asyncapi(Settings())


def test_asyncapi_document_validates_and_documents_the_wire() -> None:
    doc = yaml.safe_load((ROOT / "docs" / "asyncapi.yaml").read_text())
    official = json.loads(gzip.decompress(ASYNCAPI_SCHEMA.read_bytes()))
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in jsonschema.Draft7Validator(official).iter_errors(doc)]
    assert errors == []

    prod = doc["servers"]["kafka-prod"]
    assert prod["protocol"] == "kafka-secure"
    schemes = doc["components"]["securitySchemes"]
    assert {schemes[ref["$ref"].rsplit("/", 1)[-1]]["type"] for ref in prod["security"]} == {"scramSha512", "X509"}

    headers = doc["components"]["schemas"]["KafkaHeaders"]
    assert headers["properties"]["content-type"]["const"] == CONTENT_TYPE
    assert not [h for h in headers["properties"] if h.lower().startswith("ce_")]

    messages = doc["components"]["messages"]
    assert len(messages) == len(CONTRACTS)
    for c in CONTRACTS:
        message = next(m for m in messages.values() if m["name"] == c.type)
        assert message["headers"] == {"$ref": "#/components/schemas/KafkaHeaders"}
        assert message["externalDocs"]["url"] == c.dataschema
        [example] = message["examples"]
        assert example["headers"][TYPE_HEADER] == c.type
        assert example["payload"]["type"] == c.type
        assert example["payload"]["source"] == f"/pena/{c.service}"
        c.payload.model_validate(example["payload"]["data"])  # the example is a valid instance
