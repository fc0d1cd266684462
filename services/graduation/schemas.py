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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "level": "umk",
                    "region_code": "1371",
                    "year": 2026,
                    "amount": 3160000,
                    "source": "example figure for the API documentation",
                    "is_example": True,
                }
            ]
        }
    )
    level: Literal["umk", "ump"]
    region_code: str = Field(pattern=r"^\d{2}(\d{2})?$", description="2 digits for UMP, 4 for UMK")
    year: int = Field(ge=2000, le=2100)
    amount: int = Field(gt=0, le=100_000_000, description="rupiah per month")
    source: str = Field(min_length=1, max_length=300)
    is_example: bool = False


class PovertyLineUpdate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "amount": 440000,
                    "source": "example figure for the API documentation",
                    "is_example": True,
                }
            ]
        }
    )
    year: int = Field(ge=2000, le=2100)
    amount: int = Field(gt=0, le=100_000_000, description="rupiah per person per month")
    source: str = Field(min_length=1, max_length=300)
    is_example: bool = False


class ReferenceUpsertRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"upserted": 2}]})
    upserted: int


class MinimumWageRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "level": "umk",
                    "region_code": "1371",
                    "year": 2026,
                    "amount": 3160000,
                    "source": "example figure for the API documentation",
                    "is_example": True,
                    "updated_at": "2026-12-01T01:00:00Z",
                }
            ]
        },
    )
    level: str
    region_code: str
    year: int
    amount: int
    source: str
    is_example: bool
    updated_at: datetime


class PovertyLineRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "year": 2026,
                    "amount": 440000,
                    "source": "example figure for the API documentation",
                    "is_example": True,
                    "updated_at": "2026-12-01T01:00:00Z",
                }
            ]
        },
    )
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "effective_from": "2027-01-01",
                    "criteria": {
                        "household_income_at_least_umk": True,
                        "income_per_member_above_poverty_line_margin": 0.2,
                        "business_active_required": True,
                        "voluntary_statement_required_for_sejahtera_mandiri": True,
                    },
                    "note": "2027 national policy",
                }
            ]
        }
    )
    effective_from: date
    criteria: PolicyCriteria
    note: str | None = Field(default=None, max_length=500)


class PolicyRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "7c9e1a3b-5d7f-4a9c-8e0a-3b5d7f9a1c2e",
                    "version": 1,
                    "effective_from": "2027-01-01",
                    "criteria": {
                        "household_income_at_least_umk": True,
                        "income_per_member_above_poverty_line_margin": 0.2,
                        "business_active_required": True,
                        "voluntary_statement_required_for_sejahtera_mandiri": True,
                    },
                    "note": "2027 national policy",
                    "created_at": "2026-12-15T02:00:00Z",
                    "created_by": "admin-pusat-01",
                }
            ]
        },
    )
    id: str
    version: int
    effective_from: date
    criteria: dict[str, Any]
    note: str | None
    created_at: datetime
    created_by: str


# ------------------------------------------------------------------ assessments


class AssessmentRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "3a5c7e9b-1d3f-4b5d-9f1a-4c6e8a0b2d4f",
                    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "monev_task_id": "e4b6d8f0-1a3c-4e5a-9c7e-0b2d4f6a8c3e",
                    "submission_version": 1,
                    "visit_date": "2027-01-18",
                    "region_code": "1371011001",
                    "centre_id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "batch_id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "business_field": "fashion_menjahit",
                    "outcome": "ready",
                    "policy_id": "7c9e1a3b-5d7f-4a9c-8e0a-3b5d7f9a1c2e",
                    "policy_version": 1,
                    "criteria": [
                        {
                            "criterion": "household_income_at_least_minimum_wage",
                            "value": 3600000,
                            "threshold": 3160000,
                            "passed": True,
                            "note": "UMK 1371 2026 Rp 3.160.000 (example reference value, not an official figure)",
                        },
                        {
                            "criterion": "income_per_member_above_poverty_line",
                            "value": 900000,
                            "threshold": 528000,
                            "passed": True,
                            "note": "extreme-poverty line 2026 Rp 440.000 per person per month x (1 + 0.2 margin); "
                            "Rp 3.600.000 / 4 members (example reference value, not an official figure)",
                        },
                        {
                            "criterion": "business_active",
                            "value": "active",
                            "threshold": "active",
                            "passed": True,
                            "note": None,
                        },
                        {
                            "criterion": "voluntary_exit_statement",
                            "value": True,
                            "threshold": True,
                            "passed": True,
                            "note": "required to approve kind sejahtera_mandiri; does not block readiness",
                        },
                    ],
                    "reference_values": {
                        "year": 2026,
                        "regency_code": "1371",
                        "province_code": "13",
                        "minimum_wage": {
                            "level": "umk",
                            "region_code": "1371",
                            "year": 2026,
                            "amount": 3160000,
                            "source": "example figure for the API documentation",
                            "is_example": True,
                        },
                        "poverty_line": {
                            "year": 2026,
                            "amount": 440000,
                            "source": "example figure for the API documentation",
                            "is_example": True,
                        },
                    },
                    "assessed_at": "2027-01-18T07:40:02Z",
                    "status": "current",
                    "supersedes_assessment_id": None,
                    "superseded_by_assessment_id": None,
                    "superseded_at": None,
                    "verified_by": "verifier-sumbar-01",
                    "verified_at": "2027-01-22T03:00:00Z",
                    "evidence_checked": True,
                    "verification_notes": "Usaha dan tabungan dicek saat kunjungan ulang",
                }
            ]
        },
    )
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"evidence_checked": True, "notes": "Usaha dan tabungan dicek saat kunjungan ulang"}]
        }
    )
    evidence_checked: bool = Field(description="the verifier checked the field evidence behind the Monev result")
    notes: str | None = Field(default=None, max_length=2000)


# ------------------------------------------------------------------ decisions and appeals


class DecisionCommand(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "decision": "approve",
                    "kind": "sejahtera_mandiri",
                    "reason": "all criteria met, evidence verified, voluntary exit statement signed",
                    "effective_date": "2027-02-01",
                }
            ]
        }
    )
    decision: Literal["approve", "reject", "defer"]
    kind: GraduationKind | None = Field(default=None, description="required to approve")
    reason: str = Field(min_length=1, max_length=2000)
    effective_date: date | None = Field(
        default=None, description="defaults to today on the business calendar (PENA_BUSINESS_TIMEZONE, WIB by default)"
    )


class DecisionRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "8d0f2b4d-6f8a-4c0e-9a2c-5e7a9c1e3b5d",
                    "assessment_id": "3a5c7e9b-1d3f-4b5d-9f1a-4c6e8a0b2d4f",
                    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "outcome": "approved",
                    "graduated": True,
                    "kind": "sejahtera_mandiri",
                    "reason": "all criteria met, evidence verified, voluntary exit statement signed",
                    "effective_date": "2027-02-01",
                    "mentoring_until": "2027-06-01",
                    "decided_by": "approver-sumbar-01",
                    "decided_at": "2027-01-25T04:10:00Z",
                    "region_code": "1371011001",
                    "supersedes_decision_id": None,
                    "reversed_at": None,
                    "reversed_by_appeal_id": None,
                }
            ]
        },
    )
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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"grounds": "Pendapatan bulan ini turun karena mesin jahit rusak; keluarga meminta peninjauan ulang"}
            ]
        }
    )
    grounds: str = Field(min_length=1, max_length=4000, description="the family's objection, as recorded")


class AppealDecisionCommand(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"resolution": "uphold", "reason": "income recovered after the repair; the decision stands"}]
        }
    )
    resolution: Literal["uphold", "reverse"]
    reason: str = Field(min_length=1, max_length=2000)


class AppealRead(BaseModel):
    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "1b3d5f7a-9c1e-4d3f-8b5a-6d8f0b2d4f6a",
                    "decision_id": "8d0f2b4d-6f8a-4c0e-9a2c-5e7a9c1e3b5d",
                    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "region_code": "1371011001",
                    "grounds": "Pendapatan bulan ini turun karena mesin jahit rusak; keluarga meminta peninjauan ulang",
                    "filed_by": "fac-padang-01",
                    "filed_at": "2027-02-10T02:30:00Z",
                    "status": "filed",
                    "resolution_reason": None,
                    "decided_by": None,
                    "decided_at": None,
                    "reversal_decision_id": None,
                }
            ]
        },
    )
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


class StatisticsCounts(BaseModel):
    ready: int = 0
    graduated: int = 0
    deferred: int = 0
    rejected: int = 0


class StatisticsGroup(BaseModel):
    key: str | None = Field(description="the group's code (region code, centre id, business field, method, ...)")
    name: str | None = Field(
        default=None,
        description="the code's name (Kemendagri for regions; as training announced centres, methods"
        " and fields); null when not known",
    )
    persons: StatisticsCounts = Field(default_factory=StatisticsCounts, description="participants (persons)")
    kpm: StatisticsCounts | None = Field(
        default=None,
        description=(
            "families (KPM, one per KK: distinct registry households; a participant whose household graduation"
            " has not heard of counts as its own family)"
        ),
    )


class StatisticsRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "as_of": "2027-03-31",
                    "known_at": "2027-04-05T03:00:00Z",
                    "group_by": "regency",
                    "totals": {
                        "key": None,
                        "name": None,
                        "persons": {"ready": 42, "graduated": 35, "deferred": 4, "rejected": 3},
                        "kpm": {"ready": 41, "graduated": 35, "deferred": 4, "rejected": 3},
                    },
                    "groups": [
                        {
                            "key": "1371",
                            "name": "KOTA PADANG",
                            "persons": {"ready": 30, "graduated": 26, "deferred": 2, "rejected": 2},
                            "kpm": {"ready": 29, "graduated": 26, "deferred": 2, "rejected": 2},
                        },
                        {
                            "key": "1375",
                            "name": "KOTA BUKITTINGGI",
                            "persons": {"ready": 12, "graduated": 9, "deferred": 2, "rejected": 1},
                            "kpm": {"ready": 12, "graduated": 9, "deferred": 2, "rejected": 1},
                        },
                    ],
                }
            ]
        }
    )
    as_of: date = Field(
        description="valid date: counts the situation measured (Monev visit date) or decided (effective date) by then"
    )
    known_at: datetime = Field(
        description="record time: only what the system had recorded at or before this moment counts (default: now);"
        " asking again with the same known_at gives the same figure"
    )
    group_by: str | None
    totals: StatisticsGroup
    groups: list[StatisticsGroup]
