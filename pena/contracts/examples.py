"""One example instance per event type, built from the payload model's JSON Schema (every field
filled, including the optional ones, with plausible values chosen by type, format and name) and
validated by the model, so an example can never drift from its contract. Used in the AsyncAPI
document (pena/asyncapi.py) and by the tests that send one event of every type."""

from __future__ import annotations

import uuid
from typing import Any

from pena.contracts import EventContract

TIME = "2026-05-05T03:00:00Z"
DATE = "2026-05-05"
# values by field name where the type alone says too little (no personal data: ids and codes only)
BY_NAME: dict[str, Any] = {
    "region_code": "3171010001",
    "nik_token": "9f2c4e6a8b0d1f3e5a7c9e1b3d5f7a9c2e4b6d8f0a1c3e5b7d9f1a3c5e7b9d0f",
    "wave": "P3M",
    "business_field": "kuliner",
    "method": "offline",
    "centre_name": "Sentra Budi Perkasa Padang",
    "method_name": "Life skill training",
    "business_field_name": "Kuliner (culinary)",
    "formula_version": "2026.1",
    "reason_code": "attendance_below_rule",
    "criterion": "income_per_member_above_poverty_line",
    "changed_fields": ["household_size"],
    "assistance_programmes": ["PKH"],
    "assistance_still_received": ["PKH"],
    "household_size": 4,
    "baseline_household_size": 4,
    "dtsen_decile": 2,
    "birth_year": 1988,
    "capacity": 30,
    "sessions_total": 12,
    "sessions_attended": 11,
    "attendance_rate": 0.92,
    "policy_version": 1,
    "submission_version": 1,
    "version": 1,
    "welfare_self_assessment": 4,
    "to_status": "active",
    "end_date": "2026-05-16",
    "mentoring_until": "2026-11-05",
    "mentoring_follow_ups": ["P6M", "P12M"],
    # a mentoring visit below the line: Rp 1,400,000 for 4 people against Rp 391,000 per person
    "monthly_household_income": 1_400_000,
    "income_per_member": 350_000,
    "poverty_line": 391_000,
    "poverty_line_year": 2026,
}


def _value(name: str, schema: dict[str, Any], defs: dict[str, Any]) -> Any:
    if "$ref" in schema:
        return _value(name, defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if name in BY_NAME:
        return BY_NAME[name]
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        choices = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _value(name, choices[0], defs)
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        return {field: _value(field, sub, defs) for field, sub in props.items()}
    if kind == "array":
        return [_value(name, schema.get("items", {}), defs)]
    if kind == "string":
        if schema.get("format") == "date-time":
            return TIME
        if schema.get("format") == "date":
            return DATE
        if name.endswith("_id"):
            return str(uuid.uuid5(uuid.NAMESPACE_URL, f"pena:{name}"))
        return "example"
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        high = schema.get("maximum", schema.get("exclusiveMaximum"))
        if high is not None:
            return (low + high) / 2 if kind == "number" else (low + high) // 2
        return max(low, 2_500_000 if kind == "integer" else 0.75)
    return None


def example_payload(contract: EventContract) -> dict[str, Any]:
    """A valid `data` of this event type (validated by the payload model), in its JSON form."""
    schema = contract.payload.model_json_schema(mode="validation")
    raw = _value("", schema, schema.get("$defs", {}))
    return contract.payload.model_validate(raw).model_dump(mode="json")


def example_event(contract: EventContract) -> dict[str, Any]:
    """A whole CloudEvents envelope of this type, as it is on the wire (the Kafka record value)."""
    data = example_payload(contract)
    subject = data.get("participant_id") or data.get("batch_id")
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"pena:event:{contract.type}")),
        "source": f"/pena/{contract.service}",
        "type": contract.type,
        "subject": subject,
        "time": TIME,
        "datacontenttype": "application/json",
        "dataschema": contract.dataschema,
        "correlationid": "c0a80101-0000-4000-8000-000000000001",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "data": data,
    }
