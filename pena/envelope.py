"""CloudEvents 1.0 envelope, structured JSON mode (`application/cloudevents+json`).

A pydantic model rather than the `cloudevents` package: we need validation of consumed events with
clear errors and the same model for the AsyncAPI document, which pydantic already gives us.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

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


def event_documents(
    *,
    event_type: str,
    source: str,
    dataschema: str | None,
    events: Iterable[tuple[str | None, datetime, dict[str, Any]]],
) -> list[dict[str, Any]]:
    """Many envelopes of one type as JSON documents, each equal to `make_event(...).model_dump(mode="json",
    exclude_none=True)` for its (subject, time, data), built without the CloudEvent model: for bulk
    writers whose data was just dumped from a payload validated against its contract (validating the
    envelope of fields we set ourselves once more per row cost as much as the payload). Correlation and
    trace context are read once, from the current request or event."""
    context = {
        "correlationid": current_correlation_id(),
        "causationid": current_causation_id(),
        "traceparent": current_traceparent(),
    }
    extensions = {name: value for name, value in context.items() if value is not None}
    documents = []
    for subject, time, data in events:
        document: dict[str, Any] = {"specversion": "1.0", "id": new_event_id(), "source": source, "type": event_type}
        if subject is not None:
            document["subject"] = subject
        document["time"] = to_jsonable_python(time)
        document["datacontenttype"] = JSON_DATA
        if dataschema is not None:
            document["dataschema"] = dataschema
        document.update(extensions)
        document["data"] = data
        documents.append(document)
    return documents


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
    """Builds an envelope; correlation and trace context come from the current request or event."""
    return CloudEvent(
        id=new_event_id(),
        source=source,
        type=event_type,
        subject=subject,
        time=time,
        data=data,
        dataschema=dataschema,
        correlationid=current_correlation_id(),
        causationid=causation_id or current_causation_id(),
        traceparent=current_traceparent(),
    )
