"""Request (StrictModel: unknown fields refused) and response models of the graduation API. Suffixes:
`Create` a new resource, `Update` a change (the reference rows a PUT upserts), `Command` an action
(verification, decision, appeal decision), `Read` every response; nested value objects keep bare
names (`PolicyCriteria`, `StatisticsGroup`)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from pena.contracts.graduation import CriterionResult, GraduationKind
from pena.http.bodies import StrictModel
from services.graduation.policy import DEFAULT_MENTORING_FOLLOW_UPS

# an ISO-8601 duration in whole years, months, weeks and days (P6M, P1Y, P90D)
MENTORING_OFFSET = r"^P(\d+Y)?(\d+M)?(\d+W)?(\d+D)?$"

# ------------------------------------------------------------------ reference data


class MinimumWageUpdate(StrictModel):
    level: Literal["umk", "ump"]
    region_code: str = Field(pattern=r"^\d{2}(\d{2})?$", description="2 digits for UMP, 4 for UMK")
    year: int = Field(ge=2000, le=2100)
    amount: int = Field(gt=0, le=100_000_000, description="rupiah per month")
    source: str = Field(min_length=1, max_length=300)
    is_example: bool = False


class PovertyLineUpdate(StrictModel):
    year: int = Field(ge=2000, le=2100)
    amount: int = Field(gt=0, le=100_000_000, description="rupiah per person per month")
    source: str = Field(min_length=1, max_length=300)
    is_example: bool = False


class ReferenceUpsertRead(BaseModel):
    upserted: int


class MinimumWageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    level: str
    region_code: str
    year: int
    amount: int
    source: str
    is_example: bool
    updated_at: datetime


class PovertyLineRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    year: int
    amount: int
    source: str
    is_example: bool
    updated_at: datetime


# ------------------------------------------------------------------ policies


class PolicyCriteria(StrictModel):
    household_income_at_least_umk: bool = True
    income_per_member_above_poverty_line_margin: float | None = Field(
        default=0.2, ge=0, le=5, description="null: not checked; 0.2 = 20% above the line"
    )
    business_active_required: bool = True
    voluntary_statement_required_for_sejahtera_mandiri: bool = True
    mentoring_follow_ups: list[Annotated[str, Field(pattern=MENTORING_OFFSET, min_length=2, max_length=20)]] = Field(
        default_factory=lambda: list(DEFAULT_MENTORING_FOLLOW_UPS),
        max_length=12,
        examples=[["P6M", "P12M"]],
        description="Monev mentoring visits after a graduation: ISO-8601 offsets (years, months, weeks,"
        " days) from the decision's effective date; [] for none",
    )


class PolicyCreate(StrictModel):
    effective_from: date
    criteria: PolicyCriteria
    note: str | None = Field(default=None, max_length=500)


class PolicyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    version: int
    effective_from: date
    criteria: dict[str, Any]
    note: str | None
    created_at: datetime
    created_by: str


# ------------------------------------------------------------------ assessments


class AssessmentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    participant_id: str
    monev_task_id: str
    submission_version: int
    visit_date: date
    region_code: str
    centre_id: str | None
    batch_id: str | None
    business_field: str | None
    outcome: str
    policy_id: str
    policy_version: int
    criteria: list[CriterionResult]
    reference_values: dict[str, Any]
    assessed_at: datetime
    status: str
    supersedes_assessment_id: str | None
    superseded_by_assessment_id: str | None
    superseded_at: datetime | None
    verified_by: str | None
    verified_at: datetime | None
    evidence_checked: bool | None
    verification_notes: str | None


class VerificationCommand(StrictModel):
    evidence_checked: bool = Field(description="the verifier checked the field evidence behind the Monev result")
    notes: str | None = Field(default=None, max_length=2000)


# ------------------------------------------------------------------ decisions and appeals


class DecisionCommand(StrictModel):
    decision: Literal["approve", "reject", "defer"]
    kind: GraduationKind | None = Field(default=None, description="required to approve")
    reason: str = Field(min_length=1, max_length=2000)
    effective_date: date | None = Field(
        default=None, description="defaults to today on the business calendar (PENA_BUSINESS_TIMEZONE, WIB by default)"
    )


class DecisionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    assessment_id: str
    participant_id: str
    outcome: str
    graduated: bool
    kind: str | None
    reason: str
    effective_date: date | None
    mentoring_until: date | None
    mentoring_follow_ups: list[str] = Field(description="offsets of the Monev mentoring visits it scheduled")
    decided_by: str
    decided_at: datetime
    region_code: str
    supersedes_decision_id: str | None
    reversed_at: datetime | None
    reversed_by_appeal_id: str | None


class AppealCreate(StrictModel):
    grounds: str = Field(min_length=1, max_length=4000, description="the family's objection, as recorded")


class AppealDecisionCommand(StrictModel):
    resolution: Literal["uphold", "reverse"]
    reason: str = Field(min_length=1, max_length=2000)


class AppealRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    decision_id: str
    participant_id: str
    region_code: str
    grounds: str
    filed_by: str
    filed_at: datetime
    status: str
    resolution_reason: str | None
    decided_by: str | None
    decided_at: datetime | None
    reversal_decision_id: str | None


# ------------------------------------------------------------------ relapse cases (mentoring)


class RelapseRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    participant_id: str
    decision_id: str | None = Field(description="the graduation decision the mentoring visit followed")
    monev_task_id: str
    submission_version: int
    wave: str = Field(description="offset of the mentoring visit after the decision's effective date")
    visit_date: date
    region_code: str
    monthly_household_income: int
    household_size: int
    income_per_member: int = Field(description="rupiah per person per month at the visit")
    poverty_line: int = Field(description="extreme-poverty line of the visit year, rupiah per person per month")
    poverty_line_year: int
    poverty_line_source: str
    status: Literal["open", "cleared"] = Field(description="cleared: a corrected survey is above the line")
    flagged_at: datetime
    updated_at: datetime


# ------------------------------------------------------------------ statistics


class StatisticsGroup(BaseModel):
    key: str | None
    ready: int = 0
    graduated: int = 0
    deferred: int = 0
    rejected: int = 0


class StatisticsRead(BaseModel):
    as_of: date
    group_by: str | None
    cutoff: datetime = Field(
        description=(
            "end of the as_of day on the business calendar (PENA_BUSINESS_TIMEZONE, WIB by default);"
            " later facts are ignored"
        )
    )
    totals: StatisticsGroup
    groups: list[StatisticsGroup]
