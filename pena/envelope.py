"""CloudEvents 1.0 envelope, structured JSON mode (`application/cloudevents+json`).

A pydantic model rather than the `cloudevents` package: we need validation of consumed events with
clear errors and the same model for the AsyncAPI document, which pydantic already gives us.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from pena.context import current_causation_id, current_correlation_id, current_traceparent
from pena.ids import new_id

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
# Kafka header with the event type, for routing without parsing the value (not `ce_type`: any `ce_`
# header marks a record as binary mode in the CloudEvents Kafka binding, and PENA's are structured)
TYPE_HEADER = "pena-type"
SOURCE_PREFIX = "/pena/"
JSON_DATA = "application/json"  # the datacontenttype of every PENA event


def service_source(service: str) -> str:
    """The CloudEvents `source` of every event a service publishes (`/pena/<service>`): consumers
    accept an event type only with the source of the service that owns it (pena.consumer)."""
    return f"{SOURCE_PREFIX}{service}"


class CloudEvent(BaseModel):
    model_config = ConfigDict(extra="allow")  # unknown extension attributes are kept, not refused

    specversion: Literal["1.0"] = "1.0"
    id: str = Field(min_length=1)
    source: str = Field(min_length=1)
    type: str = Field(min_length=1)
    subject: str | None = None
    time: datetime
    datacontenttype: str = JSON_DATA
    dataschema: str | None = None
    # extensions (CloudEvents allows lower-case alphanumeric attribute names)
    correlationid: str | None = None
    causationid: str | None = None
    traceparent: str | None = None
    data: dict[str, Any] = Field(default_factory=dict)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> CloudEvent:
        return cls.model_validate_json(raw)


def new_event_id() -> str:
    return new_id()


def make_event(
    *,
    event_type: str,
    source: str,
    subject: str | None,
    time: datetime,
    data: dict[str, Any],
    dataschema: str | None = None,
    causation_id: str | None = None,
) -> CloudEvent:
    """Builds an envelope as a model (`make_envelope`, validated); correlation and trace context come from
    the current request or event."""
    return CloudEvent.model_validate(
        make_envelope(
            event_type=event_type,
            source=source,
            subject=subject,
            time=time,
            data=data,
            dataschema=dataschema,
            causation_id=causation_id,
        )
    )


_TIME = TypeAdapter(datetime)  # the same serialiser as CloudEvent.time's


def make_envelope(
    *,
    event_type: str,
    source: str,
    subject: str | None,
    time: datetime,
    data: dict[str, Any],
    dataschema: str | None = None,
    causation_id: str | None = None,
) -> dict[str, Any]:
    """An envelope in its JSON form (`CloudEvent.model_dump(mode="json", exclude_none=True)`, what the
    outbox stores) built directly, without a model instance per event: the outbox writes one per
    event, often thousands per batch (tests/unit checks it equals the model's dump). Correlation and
    trace context come from the current request or event; `data` must already be in JSON form.
    The one envelope builder: `make_event` validates its result into a model, the outbox stores it."""
    envelope: dict[str, Any] = {"specversion": "1.0", "id": new_event_id(), "source": source, "type": event_type}
    if subject is not None:
        envelope["subject"] = subject
    envelope["time"] = _TIME.dump_python(time, mode="json")
    envelope["datacontenttype"] = JSON_DATA
    for key, value in (
        ("dataschema", dataschema),
        ("correlationid", current_correlation_id()),
        ("causationid", causation_id or current_causation_id()),
        ("traceparent", current_traceparent()),
    ):
        if value is not None:
            envelope[key] = value
    envelope["data"] = data
    return envelope
