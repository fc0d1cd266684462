"""Renders the AsyncAPI 3.0 document of every event from the contracts (docs/asyncapi.yaml).
CI regenerates it and fails when the committed file differs (`pena asyncapi --check`)."""

from __future__ import annotations

from typing import Any

import yaml
from pydantic.json_schema import models_json_schema

from pena.contracts import CONTRACTS, SERVICES, EventContract
from pena.contracts.examples import example_event
from pena.envelope import CONTENT_TYPE, TYPE_HEADER, service_source
from pena.settings import Settings

REF = "#/components/schemas/{model}"


def _camel(name: str) -> str:
    head, *rest = name.replace(".", "_").split("_")
    return head + "".join(p.title() for p in rest)


def _envelope_schema(contract_type: str, source: str, payload_ref: str, dataschema: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": "CloudEvents 1.0, structured JSON mode; the whole envelope is the Kafka record value.",
        "required": ["specversion", "id", "source", "type", "time", "data"],
        "properties": {
            "specversion": {"type": "string", "const": "1.0"},
            "id": {"type": "string", "description": "unique event id: consumers dedupe on it"},
            "source": {"type": "string", "const": source},
            "type": {"type": "string", "const": contract_type},
            "subject": {"type": "string", "description": "participant id (or batch id for batch events)"},
            "time": {"type": "string", "format": "date-time"},
            "datacontenttype": {"type": "string", "const": "application/json"},
            "dataschema": {"type": "string", "const": dataschema},
            "correlationid": {"type": "string", "description": "follows one request through every service"},
            "causationid": {"type": "string", "description": "id of the event that caused this one"},
            "traceparent": {"type": "string", "description": "W3C trace context"},
            "data": {"$ref": payload_ref},
        },
    }


def _headers_schema() -> dict[str, Any]:
    return {
        "type": "object",
        "description": "Kafka record headers. Structured mode: the record value is the whole CloudEvent, so "
        "there is no `ce_` header (the CloudEvents Kafka binding reads any `ce_` header as binary mode).",
        "required": ["content-type", TYPE_HEADER],
        "properties": {
            "content-type": {"type": "string", "const": CONTENT_TYPE},
            TYPE_HEADER: {"type": "string", "description": "the CloudEvents type, to route without parsing the value"},
            "traceparent": {"type": "string", "description": "W3C trace context (as in the envelope), when set"},
        },
    }


def _example(c: EventContract) -> dict[str, Any]:
    event = example_event(c)
    headers = {"content-type": CONTENT_TYPE, TYPE_HEADER: c.type, "traceparent": event["traceparent"]}
    return {"name": c.name, "summary": f"a {c.name} event", "headers": headers, "payload": event}


def build_document(settings: Settings) -> dict[str, Any]:
    _, defs = models_json_schema([(c.payload, "validation") for c in CONTRACTS], ref_template=REF)
    schemas: dict[str, Any] = dict(sorted(defs.get("$defs", {}).items()))
    messages: dict[str, Any] = {}
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    for service in SERVICES:
        owned = [c for c in CONTRACTS if c.service == service]
        channel_id = f"{service}Events"
        channel_messages = {}
        for c in owned:
            msg_id = _camel(c.name)
            envelope_id = f"{c.payload.__name__}Event"
            schemas[envelope_id] = _envelope_schema(
                c.type, service_source(service), REF.format(model=c.payload.__name__), c.dataschema
            )
            messages[msg_id] = {
                "name": c.type,
                "title": c.name,
                "summary": c.summary,
                "contentType": CONTENT_TYPE.split(";")[0],
                "headers": {"$ref": "#/components/schemas/KafkaHeaders"},
                "payload": {"$ref": REF.format(model=envelope_id)},
                "externalDocs": {"description": "JSON Schema of data (served by the owner)", "url": c.dataschema},
                "examples": [_example(c)],
                "bindings": {
                    "kafka": {
                        "key": {"type": "string", "description": "participant id (the subject)"},
                        "bindingVersion": "0.5.0",
                    }
                },
            }
            channel_messages[msg_id] = {"$ref": f"#/components/messages/{msg_id}"}
        channels[channel_id] = {
            "address": settings.topic(service),
            "description": f"Events published by the {service} service through its transactional outbox.",
            "messages": channel_messages,
            "bindings": {
                "kafka": {
                    "topic": settings.topic(service),
                    "partitions": settings.topic_partitions,
                    "bindingVersion": "0.5.0",
                }
            },
        }
        channels[f"{service}DeadLetters"] = {
            "address": settings.dead_letter_topic(service),
            "description": "Events from the topic above that a consumer could not handle: JSON with consumer, "
            "origin (topic/partition/offset), error, attempts, the envelope when it parsed, "
            "failed_at. Replay through the operations API.",
        }
        operations[f"publish{service.title()}Events"] = {
            "action": "send",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [{"$ref": f"#/channels/{channel_id}/messages/{m}"} for m in channel_messages],
        }
    schemas["KafkaHeaders"] = _headers_schema()
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "PENA platform events",
            "version": "1.0.0",
            "description": "Events of the PENA services (participants, training, monev, graduation). Keys are "
            "participant ids, so one family's events stay ordered in one partition. Delivery is "
            "at least once: dedupe on the CloudEvents id. Payloads never carry NIK, KK or names; "
            "`nik_token` is an HMAC of the NIK for matching. Generated from pena/contracts.",
        },
        "defaultContentType": CONTENT_TYPE.split(";")[0],
        "servers": {
            "local": {
                "host": settings.kafka_bootstrap,
                "protocol": "kafka",
                "description": "single-node broker started by `pena infra up` (PLAINTEXT, development only)",
            },
            "kafka-prod": {
                "host": "{broker}:9094",
                "protocol": "kafka-secure",
                "description": "a production cluster: SASL_SSL with SCRAM-SHA-512, one principal per system with "
                "Read on the topics it needs (docs/operations.md, section 7a); or mTLS (SSL with a client "
                "certificate). The operators give the broker addresses and the CA.",
                "variables": {
                    "broker": {
                        "default": "kafka-1.example.internal",
                        "description": "any broker of the cluster (list all of them as bootstrap servers)",
                    }
                },
                "security": [
                    {"$ref": "#/components/securitySchemes/saslScram"},
                    {"$ref": "#/components/securitySchemes/mutualTls"},
                ],
                "bindings": {"kafka": {"bindingVersion": "0.5.0"}},
            },
        },
        "channels": channels,
        "operations": operations,
        "components": {
            "messages": messages,
            "schemas": schemas,
            "securitySchemes": {
                "saslScram": {
                    "type": "scramSha512",
                    "description": "SASL/SCRAM-SHA-512 over TLS (security.protocol=SASL_SSL); the credentials "
                    "of your own principal, never a PENA service's",
                },
                "mutualTls": {
                    "type": "X509",
                    "description": "mTLS: security.protocol=SSL with a client certificate signed by the cluster's CA",
                },
            },
        },
    }


def render_asyncapi(settings: Settings) -> str:
    # rendered with default settings so the committed document does not depend on a machine's env
    defaults = Settings.model_construct(**{k: f.default for k, f in Settings.model_fields.items()})
    doc = build_document(defaults if settings is not None else settings)
    body: str = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, width=110)
    return "# Generated by `pena asyncapi` from pena/contracts: do not edit by hand.\n" + body
