from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

GraduationKind = Literal["sejahtera_mandiri", "alamiah", "paksa"]


class CriterionResult(BaseModel):
    criterion: str
    value: float | str | bool | None = None
    threshold: float | str | bool | None = None
    passed: bool | None = Field(description="None when it could not be evaluated")
    note: str | None = None


class GraduationAssessed(BaseModel):
    assessment_id: str
    participant_id: str
    monev_task_id: str
    outcome: Literal["ready", "not_ready", "cannot_assess"]
    policy_id: str
    policy_version: int
    criteria: list[CriterionResult]
    supersedes_assessment_id: str | None = None
    assessed_at: datetime


class GraduationDecided(BaseModel):
    decision_id: str
    participant_id: str
    assessment_id: str
    outcome: Literal["approved", "rejected", "deferred", "reversed"]
    graduated: bool = Field(description="true: the family graduates and leaves assistance from effective_date")
    kind: GraduationKind | None = None
    effective_date: date | None = None
    mentoring_until: date | None = None
    supersedes_decision_id: str | None = Field(default=None, description="set when an appeal reverses a decision")
    household_id: str | None = Field(default=None, description="the family (KPM) the decision acts on")
    kk_token: str | None = Field(
        default=None, description="HMAC-SHA256 of the KK number: lets payment systems keyed by family act on it"
    )
    decided_at: datetime


class GraduationAppealed(BaseModel):
    appeal_id: str
    decision_id: str
    participant_id: str
    status: Literal["filed", "upheld", "reversed"]
    filed_at: datetime
    decided_at: datetime | None = None
