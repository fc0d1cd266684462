"""Event contracts shared by all services: one payload model per event type, versioned.

Services import these and nothing of each other. Payloads carry the participant id and only the facts
their consumers need: never a NIK, KK number or name in clear text (a keyed-hash `nik_token` where
another system must match a person). Published schemas only grow compatibly; a breaking change is
a new type version (`...v2`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from pena.contracts.graduation import (
    GraduationAppealed,
    GraduationAssessed,
    GraduationDecided,
    GraduationRelapseFlagged,
)
from pena.contracts.monev import MonevCompleted, MonevDue, MonevOverdue, MonevScheduled
from pena.contracts.participants import (
    ParticipantRegistered,
    ParticipantStatusChanged,
    ParticipantUpdated,
)
from pena.contracts.training import BatchScheduled, TrainingCompleted, TrainingDropped, TrainingEnrolled

TYPE_PREFIX = "id.go.kemensos.pena"
# where the services are published; every event names its schema there (`dataschema`)
SCHEMA_HOST = "https://pena.kemensos.go.id"


@dataclass(frozen=True)
class EventContract:
    name: str  # e.g. "training.completed"
    service: str  # the publishing service, which owns the topic
    payload: type[BaseModel]
    version: int = 1
    summary: str = ""

    @property
    def type(self) -> str:
        return f"{TYPE_PREFIX}.{self.name}.v{self.version}"

    @property
    def dataschema(self) -> str:
        return f"{SCHEMA_HOST}{self.schema_path}"

    @property
    def schema_path(self) -> str:
        """Path of the payload's JSON Schema, served by the owning service (pena/http/schemas.py) and
        named by the `dataschema` of every event of this type."""
        return f"/schemas/{self.name}/v{self.version}.json"

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema (2020-12) of the event's `data`, identified by its `dataschema` URL."""
        schema = self.payload.model_json_schema(mode="validation")
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": self.dataschema} | schema


CONTRACTS: tuple[EventContract, ...] = (
    EventContract(
        "participant.registered",
        "participants",
        ParticipantRegistered,
        summary="A participant (one productive-age member of a KPM) entered the registry.",
    ),
    EventContract(
        "participant.updated",
        "participants",
        ParticipantUpdated,
        summary="Registry facts of a participant changed (current values of the non-personal facts).",
    ),
    EventContract(
        "participant.status_changed",
        "participants",
        ParticipantStatusChanged,
        summary="Status moved: candidate, active, graduated, exited, erased.",
    ),
    EventContract(
        "training.batch_scheduled",
        "training",
        BatchScheduled,
        summary="A training batch (angkatan) was scheduled at a centre.",
    ),
    EventContract("training.enrolled", "training", TrainingEnrolled, summary="A participant enrolled in a batch."),
    EventContract(
        "training.completed",
        "training",
        TrainingCompleted,
        summary="A participant completed a batch; monev schedules follow-up from completed_at.",
    ),
    EventContract(
        "training.dropped",
        "training",
        TrainingDropped,
        summary="A participant did not complete a batch (rule not met, or withdrawn).",
    ),
    EventContract("monev.scheduled", "monev", MonevScheduled, summary="A follow-up task was stored with its due time."),
    EventContract("monev.due", "monev", MonevDue, summary="A follow-up task came due."),
    EventContract("monev.overdue", "monev", MonevOverdue, summary="A due task was not done within the grace period."),
    EventContract(
        "monev.completed",
        "monev",
        MonevCompleted,
        summary="A survey was submitted; carries income indicators and computed measures.",
    ),
    EventContract(
        "graduation.assessed",
        "graduation",
        GraduationAssessed,
        summary="A participant was assessed against the policy in force.",
    ),
    EventContract(
        "graduation.decided",
        "graduation",
        GraduationDecided,
        summary="An approver decided (or an appeal reversed) a graduation; payment systems act on it.",
    ),
    EventContract(
        "graduation.appealed",
        "graduation",
        GraduationAppealed,
        summary="An objection (keberatan) against a decision was filed or decided.",
    ),
    EventContract(
        "graduation.relapse_flagged",
        "graduation",
        GraduationRelapseFlagged,
        summary="A mentoring visit after graduation found income per person below the poverty line.",
    ),
)

BY_NAME: dict[str, EventContract] = {c.name: c for c in CONTRACTS}
BY_TYPE: dict[str, EventContract] = {c.type: c for c in CONTRACTS}
SERVICES: tuple[str, ...] = ("participants", "training", "monev", "graduation")


def contract(name: str) -> EventContract:
    return BY_NAME[name]


__all__ = [
    "BY_NAME",
    "BY_TYPE",
    "CONTRACTS",
    "SERVICES",
    "EventContract",
    "contract",
    "BatchScheduled",
    "GraduationAppealed",
    "GraduationAssessed",
    "GraduationDecided",
    "GraduationRelapseFlagged",
    "MonevCompleted",
    "MonevDue",
    "MonevOverdue",
    "MonevScheduled",
    "ParticipantRegistered",
    "ParticipantStatusChanged",
    "ParticipantUpdated",
    "TrainingCompleted",
    "TrainingDropped",
    "TrainingEnrolled",
]
