from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

# follow_up: the visit some months after training (PENA_MONEV_DELAYS); mentoring: a visit after a
# graduation, at the offsets graduation.decided carries (mentoring_follow_ups)
TaskKind = Literal["follow_up", "mentoring"]
KIND_DOC = "follow_up (after training) or mentoring (after graduation)"


class MonevScheduled(BaseModel):
    task_id: str
    participant_id: str
    batch_id: str
    wave: str = Field(description="ISO-8601 delay of this wave after completion, e.g. P3M")
    training_completed_at: datetime
    due_at: datetime
    kind: TaskKind = Field(default="follow_up", description=KIND_DOC)


class MonevDue(BaseModel):
    task_id: str
    participant_id: str
    wave: str
    due_at: datetime
    kind: TaskKind = Field(default="follow_up", description=KIND_DOC)


class MonevOverdue(BaseModel):
    task_id: str
    participant_id: str
    wave: str
    due_at: datetime
    overdue_at: datetime
    kind: TaskKind = Field(default="follow_up", description=KIND_DOC)


class MonevIndicators(BaseModel):
    business_status: Literal["active", "paused", "closed"]
    business_field: str | None = None
    monthly_revenue: int = Field(ge=0)
    monthly_household_income: int = Field(ge=0)
    household_size: int = Field(ge=1)
    workers_employed: int = Field(ge=0)
    business_assets: int = Field(ge=0)
    savings: int = Field(ge=0)
    assistance_still_received: list[str] = Field(default_factory=list)
    welfare_self_assessment: int = Field(ge=1, le=5, description="1 much worse .. 5 much better")
    voluntary_exit_statement: bool = Field(
        default=False, description="the family states it is ready to leave assistance (sejahtera mandiri)"
    )


class MonevMeasures(BaseModel):
    formula_version: str
    baseline_monthly_income: int | None = None
    baseline_household_size: int | None = None
    income_change: int | None = None
    income_per_member: int
    income_per_member_change: int | None = None
    welfare_index: float
    independence_index: float


class MonevCompleted(BaseModel):
    task_id: str
    participant_id: str
    batch_id: str
    centre_id: str | None = None
    business_field: str | None = None
    region_code: str | None = Field(default=None, description="participant's village code")
    wave: str
    visit_date: date
    early: bool | None = Field(
        default=None,
        description="true: visited before the task's due date, accepted with a reason; None: older than the rule",
    )
    submission_version: int = Field(description="1 for the first survey; corrections increase it")
    indicators: MonevIndicators
    measures: MonevMeasures
    completed_at: datetime
    kind: TaskKind = Field(default="follow_up", description=KIND_DOC)
    decision_id: str | None = Field(
        default=None, description="mentoring: the graduation decision whose follow-up this visit was"
    )
