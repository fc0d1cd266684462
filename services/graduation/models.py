"""Graduation tables on the service's own registry: reference data (minimum wages, poverty lines),
versioned policies, assessments, decisions, appeals and a small read model of participants."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import DateTime, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

# Each service keeps its tables on its own registry, so its database holds only its own tables.
table_registry = registry()


class GraduationBase(SQLModel, registry=table_registry):
    pass


def _moment(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class MinimumWage(GraduationBase, table=True):
    """UMK (4-digit regency/city code) or UMP (2-digit province code), valid for one calendar year."""

    __tablename__ = "graduation_minimum_wage"
    level: str = Field(primary_key=True, max_length=3)  # "umk" | "ump"
    region_code: str = Field(primary_key=True, max_length=4)
    year: int = Field(primary_key=True)
    amount: int  # rupiah per month
    source: str = Field(max_length=300)
    is_example: bool = False
    updated_at: datetime = _moment()
    updated_by: str = Field(max_length=200)


class PovertyLine(GraduationBase, table=True):
    """Extreme-poverty line in rupiah per person per month, valid for one calendar year."""

    __tablename__ = "graduation_poverty_line"
    year: int = Field(primary_key=True)
    amount: int
    source: str = Field(max_length=300)
    is_example: bool = False
    updated_at: datetime = _moment()
    updated_by: str = Field(max_length=200)


class Policy(GraduationBase, table=True):
    """One published version of the graduation rules; never edited after publication."""

    __tablename__ = "graduation_policy"
    id: str = Field(primary_key=True, max_length=40)
    version: int = Field(unique=True)
    effective_from: date
    criteria: dict[str, Any] = Field(sa_type=JSONB)
    note: str | None = Field(default=None, max_length=500)
    created_at: datetime = _moment()
    created_by: str = Field(max_length=200)


class Assessment(GraduationBase, table=True):
    __tablename__ = "graduation_assessment"
    __table_args__ = (
        UniqueConstraint("monev_task_id", "submission_version", name="graduation_assessment_monev_submission"),
        Index("graduation_assessment_list", "assessed_at", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    participant_id: str = Field(index=True, max_length=80)
    monev_task_id: str = Field(max_length=80)
    submission_version: int
    visit_date: date
    monev_completed_at: datetime = _moment()
    region_code: str = Field(index=True, max_length=10)
    centre_id: str | None = Field(default=None, max_length=80)
    batch_id: str | None = Field(default=None, max_length=80)
    business_field: str | None = Field(default=None, max_length=80)
    outcome: str = Field(max_length=20)  # ready | not_ready | cannot_assess
    policy_id: str = Field(max_length=40)
    policy_version: int
    criteria: list[dict[str, Any]] = Field(sa_type=JSONB)
    reference_values: dict[str, Any] = Field(sa_type=JSONB)  # every reference figure used, with its source
    voluntary_exit_statement: bool = False
    assessed_at: datetime = _moment()
    status: str = Field(default="current", max_length=20)  # current | superseded
    supersedes_assessment_id: str | None = Field(default=None, max_length=40)
    superseded_by_assessment_id: str | None = Field(default=None, max_length=40)
    superseded_at: datetime | None = _moment(nullable=True)
    verified_by: str | None = Field(default=None, max_length=200)
    verified_at: datetime | None = _moment(nullable=True)
    evidence_checked: bool | None = None
    verification_notes: str | None = Field(default=None, max_length=2000)
    # set when a decision on this assessment is reversed on appeal: the next decision needs a new
    # verification (or a newer Monev result, i.e. a new assessment); cleared by that verification
    reverification_required: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})


class Decision(GraduationBase, table=True):
    __tablename__ = "graduation_decision"
    __table_args__ = (Index("graduation_decision_list", "decided_at", "id"),)
    id: str = Field(primary_key=True, max_length=40)
    assessment_id: str = Field(index=True, max_length=40)
    participant_id: str = Field(index=True, max_length=80)
    outcome: str = Field(max_length=20)  # approved | rejected | deferred | reversed
    graduated: bool
    kind: str | None = Field(default=None, max_length=30)
    reason: str = Field(max_length=2000)
    effective_date: date | None = None
    mentoring_until: date | None = None
    # the Monev mentoring visits a graduation schedules (offsets after effective_date, from its policy)
    mentoring_follow_ups: list[str] = Field(
        default_factory=list, sa_type=JSONB, sa_column_kwargs={"server_default": text("'[]'::jsonb")}
    )
    decided_by: str = Field(max_length=200)
    decided_at: datetime = _moment()
    # copied from the assessment so statistics group without joins back into history
    region_code: str = Field(max_length=10)
    centre_id: str | None = Field(default=None, max_length=80)
    business_field: str | None = Field(default=None, max_length=80)
    supersedes_decision_id: str | None = Field(default=None, max_length=40)
    reversed_at: datetime | None = _moment(nullable=True)
    reversed_by_appeal_id: str | None = Field(default=None, max_length=40)


class Appeal(GraduationBase, table=True):
    """A keberatan: the family objects to a decision, filed by their facilitator."""

    __tablename__ = "graduation_appeal"
    id: str = Field(primary_key=True, max_length=40)
    decision_id: str = Field(index=True, max_length=40)
    participant_id: str = Field(max_length=80)
    region_code: str = Field(max_length=10)
    grounds: str = Field(max_length=4000)
    filed_by: str = Field(max_length=200)
    filed_at: datetime = _moment()
    status: str = Field(default="filed", max_length=20)  # filed | upheld | reversed
    resolution_reason: str | None = Field(default=None, max_length=2000)
    decided_by: str | None = Field(default=None, max_length=200)
    decided_at: datetime | None = _moment(nullable=True)
    reversal_decision_id: str | None = Field(default=None, max_length=40)


class RelapseCase(GraduationBase, table=True):
    """A mentoring visit after graduation found income per person below the extreme-poverty line: a case
    for the case workers. One per Monev task (a corrected survey updates it, or clears it when the
    corrected income is no longer below the line). Figures only: no name, no notes."""

    __tablename__ = "graduation_relapse_case"
    __table_args__ = (
        UniqueConstraint("monev_task_id", name="graduation_relapse_case_task"),
        Index("graduation_relapse_case_list", "flagged_at", "id"),
    )
    id: str = Field(primary_key=True, max_length=40)
    participant_id: str = Field(index=True, max_length=80)
    decision_id: str | None = Field(default=None, max_length=40)
    monev_task_id: str = Field(max_length=80)
    submission_version: int
    wave: str = Field(max_length=20)
    visit_date: date
    region_code: str = Field(index=True, max_length=10)
    monthly_household_income: int
    household_size: int
    income_per_member: int
    poverty_line: int
    poverty_line_year: int
    poverty_line_source: str = Field(max_length=300)
    status: str = Field(default="open", max_length=20)  # open | cleared (a correction above the line)
    flagged_at: datetime = _moment()
    updated_at: datetime = _moment()


class ParticipantView(GraduationBase, table=True):
    """What graduation needs to know of a participant, fed by participant.* events."""

    __tablename__ = "graduation_participant_view"
    participant_id: str = Field(primary_key=True, max_length=80)
    region_code: str | None = Field(default=None, max_length=10)
    status: str | None = Field(default=None, max_length=20)
    sex: str | None = Field(default=None, max_length=1)  # F | M: statistics by sex
    birth_year: int | None = None  # statistics by age group
    version: int
    updated_at: datetime = _moment()
    # the family (KPM): the registry's household id and the keyed KK token (blanked on erasure)
    household_id: str | None = Field(default=None, max_length=40)
    kk_token: str | None = Field(default=None, max_length=64)


class BatchView(GraduationBase, table=True):
    """What statistics need of a training batch (its method), fed by training.batch_scheduled."""

    __tablename__ = "graduation_batch_view"
    batch_id: str = Field(primary_key=True, max_length=80)
    centre_id: str = Field(max_length=80)
    method: str = Field(max_length=40)
    business_field: str = Field(max_length=80)
    updated_at: datetime = _moment()


class ReferenceName(GraduationBase, table=True):
    """The name of a code statistics group by (a centre, a training method, a business field), as the
    owning service announced it (training.batch_scheduled); regions are named by pena.regions."""

    __tablename__ = "graduation_reference_name"
    dimension: str = Field(primary_key=True, max_length=30)  # centre | method | business_field
    code: str = Field(primary_key=True, max_length=80)
    name: str = Field(max_length=200)
    updated_at: datetime = _moment()
