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
    mentoring_follow_ups: list[str] = Field(
        default_factory=list,
        description="ISO-8601 offsets after effective_date at which Monev visits the graduated family"
        " (mentoring tasks); empty unless graduated",
    )
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


class GraduationRelapseFlagged(BaseModel):
    """A mentoring visit after graduation found the family's income per person below the poverty line."""

    relapse_id: str
    participant_id: str
    decision_id: str | None = Field(default=None, description="the graduation decision the mentoring followed")
    monev_task_id: str
    submission_version: int = Field(description="the Monev survey version judged; a correction raises it")
    wave: str = Field(description="ISO-8601 offset of the mentoring visit after the decision, e.g. P6M")
    visit_date: date
    income_per_member: int = Field(description="rupiah per person per month at the visit")
    poverty_line: int = Field(description="rupiah per person per month, the line of the visit year")
    poverty_line_year: int
    flagged_at: datetime
