"""Request (StrictModel: unknown fields refused) and response models of the monev API. Request bodies
end in `Create` (a new resource) or `Command` (an action), responses in `Read`; nested value objects
keep bare names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from pena.contracts.monev import MonevIndicators, MonevMeasures
from pena.http.bodies import StrictModel
from pena.reference.taxonomy import BusinessFieldCode

# province (2), regency/city (4), district (6) or village (10) digits
REGION_CODE = r"^(\d{2}|\d{4}|\d{6}|\d{10})$"
TaskStatus = Literal["scheduled", "due", "overdue", "done", "cancelled"]
TaskKind = Literal["follow_up", "mentoring"]
Money = Field(ge=0, le=10_000_000_000, description="rupiah; negative amounts are refused")


class AssignmentCommand(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"facilitator": "fac-padang-01", "region": None}]})
    facilitator: str = Field(min_length=1, max_length=64, description="subject id of the facilitator")
    region: str | None = Field(
        default=None, pattern=r"^\d{10}$", description="corrects the task's village code (e.g. the family moved)"
    )


class FacilitatorRegionCreate(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"subject": "fac-padang-01", "region_prefix": "1371"}]})
    subject: str = Field(min_length=1, max_length=64, description="subject id of the facilitator")
    region_prefix: str = Field(pattern=REGION_CODE, examples=["1371"])


class FacilitatorRegionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "b2c4d6e8-0a1c-4e3a-8b5d-7f9a1c3e5b7d",
                    "subject": "fac-padang-01",
                    "region_prefix": "1371",
                    "created_at": "2026-09-15T01:00:00Z",
                }
            ]
        }
    )
    id: str
    subject: str
    region_prefix: str
    created_at: datetime


class SurveyCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "visit_date": "2027-01-18",
                    "respondent": "participant",
                    "business_status": "active",
                    "business_field": "fashion_menjahit",
                    "monthly_revenue": 4500000,
                    "monthly_household_income": 3600000,
                    "household_size": 4,
                    "workers_employed": 1,
                    "business_assets": 7500000,
                    "savings": 1200000,
                    "assistance_still_received": ["PKH"],
                    "welfare_self_assessment": 4,
                    "voluntary_exit_statement": True,
                    "notes": "Usaha jahit berjalan; sudah membeli mesin obras dari tabungan",
                    "correction_reason": None,
                }
            ]
        }
    )
    visit_date: date
    respondent: str = Field(
        pattern=r"^[a-z][a-z_]{1,39}$",
        examples=["participant", "spouse", "child", "parent", "other_household_member"],
        description="relationship of the respondent to the participant; never a name",
    )
    business_status: Literal["active", "paused", "closed"]
    business_field: BusinessFieldCode | None = Field(default=None, max_length=40)
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
    early_reason: str | None = Field(
        default=None,
        min_length=3,
        max_length=500,
        description="required when visit_date lies before the task's due date; the survey is then marked early",
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "f1a3c5e7-9b2d-4f6a-8c0e-2d4f6a8c0e1b",
                    "task_id": "e4b6d8f0-1a3c-4e5a-9c7e-0b2d4f6a8c3e",
                    "version": 1,
                    "visit_date": "2027-01-18",
                    "respondent": "participant",
                    "indicators": {
                        "business_status": "active",
                        "business_field": "fashion_menjahit",
                        "monthly_revenue": 4500000,
                        "monthly_household_income": 3600000,
                        "household_size": 4,
                        "workers_employed": 1,
                        "business_assets": 7500000,
                        "savings": 1200000,
                        "assistance_still_received": ["PKH"],
                        "welfare_self_assessment": 4,
                        "voluntary_exit_statement": True,
                    },
                    "measures": {
                        "formula_version": "2026.1",
                        "baseline_monthly_income": 900000,
                        "baseline_household_size": 4,
                        "income_change": 2700000,
                        "income_per_member": 900000,
                        "income_per_member_change": 675000,
                        "welfare_index": 0.74,
                        "independence_index": 0.68,
                    },
                    "notes": "Usaha jahit berjalan; sudah membeli mesin obras dari tabungan",
                    "notes_withheld": False,
                    "correction_reason": None,
                    "submitted_by": "fac-padang-01",
                    "submitted_at": "2027-01-18T07:40:00Z",
                }
            ]
        }
    )
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
    early: bool = Field(default=False, description="visited before the task's due date (with early_reason)")
    early_reason: str | None = Field(default=None, description="shown to the callers who may read the notes")
    submitted_by: str
    submitted_at: datetime


class TaskSummaryRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "e4b6d8f0-1a3c-4e5a-9c7e-0b2d4f6a8c3e",
                    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "batch_id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "centre_id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "business_field": "fashion_menjahit",
                    "region_code": "1371011001",
                    "wave": "P3M",
                    "kind": "follow_up",
                    "decision_id": None,
                    "training_completed_at": "2026-10-16T02:00:00Z",
                    "due_at": "2027-01-16T02:00:00Z",
                    "status": "done",
                    "assignee": "fac-padang-01",
                    "overdue_at": None,
                    "done_at": "2027-01-18T07:40:00Z",
                    "submission_version": 1,
                }
            ]
        }
    )
    id: str
    participant_id: str
    batch_id: str
    centre_id: str
    business_field: str
    region_code: str
    wave: str
    kind: TaskKind = Field(description="follow_up (after training) or mentoring (after graduation)")
    decision_id: str | None = Field(description="mentoring: the graduation decision it follows")
    training_completed_at: datetime
    due_at: datetime
    status: TaskStatus
    assignee: str | None
    overdue_at: datetime | None
    done_at: datetime | None
    submission_version: int
    cancel_reason: str | None = Field(
        default=None,
        description="why an open task was cancelled: participant_exited, participant_erased or graduation_reversed",
    )


class TaskRead(TaskSummaryRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "e4b6d8f0-1a3c-4e5a-9c7e-0b2d4f6a8c3e",
                    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "batch_id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "centre_id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "business_field": "fashion_menjahit",
                    "region_code": "1371011001",
                    "wave": "P3M",
                    "kind": "follow_up",
                    "decision_id": None,
                    "training_completed_at": "2026-10-16T02:00:00Z",
                    "due_at": "2027-01-16T02:00:00Z",
                    "status": "done",
                    "assignee": "fac-padang-01",
                    "overdue_at": None,
                    "done_at": "2027-01-18T07:40:00Z",
                    "submission_version": 1,
                    "announced_at": "2027-01-16T02:00:05Z",
                    "created_at": "2026-10-16T02:00:03Z",
                    "updated_at": "2027-01-18T07:40:00Z",
                    "result": {
                        "id": "f1a3c5e7-9b2d-4f6a-8c0e-2d4f6a8c0e1b",
                        "task_id": "e4b6d8f0-1a3c-4e5a-9c7e-0b2d4f6a8c3e",
                        "version": 1,
                        "visit_date": "2027-01-18",
                        "respondent": "participant",
                        "indicators": {
                            "business_status": "active",
                            "business_field": "fashion_menjahit",
                            "monthly_revenue": 4500000,
                            "monthly_household_income": 3600000,
                            "household_size": 4,
                            "workers_employed": 1,
                            "business_assets": 7500000,
                            "savings": 1200000,
                            "assistance_still_received": ["PKH"],
                            "welfare_self_assessment": 4,
                            "voluntary_exit_statement": True,
                        },
                        "measures": {
                            "formula_version": "2026.1",
                            "baseline_monthly_income": 900000,
                            "baseline_household_size": 4,
                            "income_change": 2700000,
                            "income_per_member": 900000,
                            "income_per_member_change": 675000,
                            "welfare_index": 0.74,
                            "independence_index": 0.68,
                        },
                        "notes": "Usaha jahit berjalan; sudah membeli mesin obras dari tabungan",
                        "notes_withheld": False,
                        "correction_reason": None,
                        "submitted_by": "fac-padang-01",
                        "submitted_at": "2027-01-18T07:40:00Z",
                    },
                }
            ]
        }
    )
    announced_at: datetime | None
    created_at: datetime
    updated_at: datetime
    result: SurveyRead | None = Field(description="the survey version in force with its computed measures")


@dataclass(frozen=True)
class TaskFilter:
    """The filters of a task list (query parameters), as the query applies them."""

    status: str | None = None
    kind: str | None = None
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
    name: str | None = Field(default=None, description="the group's name (Kemendagri for province and regency)")
    tasks_total: int
    tasks_due: int = Field(description="tasks that have come due (due, overdue or done)")
    tasks_done: int
    tasks_overdue: int
    persons: int = Field(description="participants with a task in the group")
    kpm: int = Field(
        description="families (KPM) with a task in the group: distinct registry households (a participant"
        " whose household monev has not heard of counts as its own family)"
    )
    surveyed: int = Field(description="tasks with a survey in force: the base of the survey figures below")
    completion_rate: float | None = Field(description="done / come due")
    income_change: QuartileSummary = Field(description="rupiah per month against baseline, latest surveys")
    business_active_share: float | None = Field(description="share of surveyed businesses still active")
    welfare_index_mean: float | None
    independence_index_mean: float | None


class SummaryRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "group_by": "centre",
                    "formula_version": "2026.2",
                    "groups": [
                        {
                            "group": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                            "name": None,
                            "tasks_total": 118,
                            "tasks_due": 96,
                            "tasks_done": 81,
                            "tasks_overdue": 15,
                            "persons": 112,
                            "kpm": 110,
                            "surveyed": 81,
                            "completion_rate": 0.84,
                            "income_change": {"q1": 350000.0, "median": 900000.0, "q3": 1650000.0},
                            "business_active_share": 0.79,
                            "welfare_index_mean": 0.63,
                            "independence_index_mean": 0.58,
                        }
                    ],
                }
            ]
        }
    )
    group_by: str
    formula_version: str
    groups: list[SummaryGroupRead]
