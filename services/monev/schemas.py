"""Request (StrictModel: unknown fields refused) and response models of the monev API. Request bodies
end in `Create` (a new resource) or `Command` (an action), responses in `Read`; nested value objects
keep bare names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from pena.contracts.monev import MonevIndicators, MonevMeasures
from pena.http.bodies import StrictModel

# province (2), regency/city (4), district (6) or village (10) digits
REGION_CODE = r"^(\d{2}|\d{4}|\d{6}|\d{10})$"
TaskStatus = Literal["scheduled", "due", "overdue", "done", "cancelled"]
Money = Field(ge=0, le=10_000_000_000, description="rupiah; negative amounts are refused")


class AssignmentCommand(StrictModel):
    facilitator: str = Field(min_length=1, max_length=64, description="subject id of the facilitator")
    region: str | None = Field(
        default=None, pattern=r"^\d{10}$", description="corrects the task's village code (e.g. the family moved)"
    )


class FacilitatorRegionCreate(StrictModel):
    subject: str = Field(min_length=1, max_length=64, description="subject id of the facilitator")
    region_prefix: str = Field(pattern=REGION_CODE, examples=["1371"])


class FacilitatorRegionRead(BaseModel):
    id: str
    subject: str
    region_prefix: str
    created_at: datetime


class SurveyCreate(StrictModel):
    visit_date: date
    respondent: str = Field(
        pattern=r"^[a-z][a-z_]{1,39}$",
        examples=["participant", "spouse", "child", "parent", "other_household_member"],
        description="relationship of the respondent to the participant; never a name",
    )
    business_status: Literal["active", "paused", "closed"]
    business_field: str | None = Field(default=None, max_length=40)
    monthly_revenue: int = Money
    monthly_household_income: int = Money
    household_size: int = Field(ge=1, le=50)
    workers_employed: int = Field(ge=0, le=10_000)
    business_assets: int = Money
    savings: int = Money
    assistance_still_received: list[str] = Field(
        default_factory=list, max_length=20, examples=[["PKH", "BPNT"]], description="bansos programme codes"
    )
    welfare_self_assessment: int = Field(ge=1, le=5, description="1 much worse .. 5 much better")
    voluntary_exit_statement: bool = False
    notes: str | None = Field(default=None, max_length=4000, description="stored encrypted; never in events")
    correction_reason: str | None = Field(
        default=None, min_length=3, max_length=500, description="required to correct a survey already submitted"
    )

    def indicators(self) -> MonevIndicators:
        return MonevIndicators(
            business_status=self.business_status,
            business_field=self.business_field,
            monthly_revenue=self.monthly_revenue,
            monthly_household_income=self.monthly_household_income,
            household_size=self.household_size,
            workers_employed=self.workers_employed,
            business_assets=self.business_assets,
            savings=self.savings,
            assistance_still_received=sorted({a.strip() for a in self.assistance_still_received if a.strip()}),
            welfare_self_assessment=self.welfare_self_assessment,
            voluntary_exit_statement=self.voluntary_exit_statement,
        )


class SurveyRead(BaseModel):
    id: str
    task_id: str
    version: int
    visit_date: date
    respondent: str
    indicators: MonevIndicators
    measures: MonevMeasures
    notes: str | None = Field(description="free text; only for callers with monev:submit who reach the task")
    notes_withheld: bool = Field(
        default=False, description="true when the survey has notes that this caller's scope may not read"
    )
    correction_reason: str | None
    submitted_by: str
    submitted_at: datetime


class TaskSummaryRead(BaseModel):
    id: str
    participant_id: str
    batch_id: str
    centre_id: str
    business_field: str
    region_code: str
    wave: str
    training_completed_at: datetime
    due_at: datetime
    status: TaskStatus
    assignee: str | None
    overdue_at: datetime | None
    done_at: datetime | None
    submission_version: int
    cancel_reason: str | None = Field(
        default=None, description="why an open task was cancelled: participant_exited or participant_erased"
    )


class TaskRead(TaskSummaryRead):
    announced_at: datetime | None
    created_at: datetime
    updated_at: datetime
    result: SurveyRead | None = Field(description="the survey version in force with its computed measures")


@dataclass(frozen=True)
class TaskFilter:
    """The filters of a task list (query parameters), as the query applies them."""

    status: str | None = None
    assignee: str | None = None
    region_prefix: str | None = None
    participant_id: str | None = None
    due_before: datetime | None = None
    due_after: datetime | None = None


class QuartileSummary(BaseModel):
    q1: float | None
    median: float | None
    q3: float | None


class SummaryGroupRead(BaseModel):
    group: str | None
    tasks_total: int
    tasks_due: int = Field(description="tasks that have come due (due, overdue or done)")
    tasks_done: int
    tasks_overdue: int
    completion_rate: float | None = Field(description="done / come due")
    income_change: QuartileSummary = Field(description="rupiah per month against baseline, latest surveys")
    business_active_share: float | None = Field(description="share of surveyed businesses still active")
    welfare_index_mean: float | None
    independence_index_mean: float | None


class SummaryRead(BaseModel):
    group_by: str
    formula_version: str
    groups: list[SummaryGroupRead]
