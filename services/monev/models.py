"""Tables of the monev service, on its own SQLModel registry (its database holds only these plus the
kernel tables). Participants are known only by their pseudonymous id: no NIK, KK number or name."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import DateTime, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

# Each service keeps its tables on its own registry, so its database holds only its own tables.
table_registry = registry()


class MonevBase(SQLModel, registry=table_registry):
    pass


def _moment(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class MonevTask(MonevBase, table=True):
    """One follow-up per (participant, batch, wave), one mentoring visit per (graduation decision, wave).
    status: scheduled -> due -> overdue -> done (done is reachable from due and overdue); an open task
    (scheduled, due, overdue) is cancelled when its participant exits the programme or is erased, and an
    open mentoring task when its graduation is reversed on appeal (`cancel_reason` says which)."""

    __tablename__ = "monev_tasks"
    # redelivered or re-announced completions (decisions) meet these unique indexes and change nothing
    __table_args__ = (
        Index(
            "monev_tasks_participant_batch_wave",
            "participant_id",
            "batch_id",
            "wave",
            unique=True,
            postgresql_where=text("kind = 'follow_up'"),
        ),
        Index(
            "monev_tasks_decision_wave", "decision_id", "wave", unique=True, postgresql_where=text("kind = 'mentoring'")
        ),
        Index("monev_tasks_due_id", "due_at", "id"),
        Index("monev_tasks_assignee_due", "assignee", "due_at"),
    )

    id: str = Field(primary_key=True, max_length=40)
    participant_id: str = Field(max_length=64, index=True)
    batch_id: str = Field(max_length=40)
    centre_id: str = Field(max_length=40, index=True)
    business_field: str = Field(max_length=40)
    # the participant's village code (from the registry read model), else the batch location's
    region_code: str = Field(max_length=10, index=True)
    wave: str = Field(max_length=20)
    # follow_up (after training) | mentoring (after graduation: batch, centre, field and training time
    # are those of the participant's follow-up task; wave is the offset after the decision's effective date)
    kind: str = Field(default="follow_up", max_length=20, sa_column_kwargs={"server_default": "follow_up"})
    decision_id: str | None = Field(default=None, max_length=40)  # mentoring: the graduation decision
    training_completed_at: datetime = _moment()
    due_at: datetime = _moment()
    status: str = Field(max_length=12, index=True)
    assignee: str | None = Field(default=None, max_length=64)
    assigned_by: str | None = Field(default=None, max_length=64)  # a subject id, or "auto:region"
    announced_at: datetime | None = _moment(nullable=True)
    overdue_at: datetime | None = _moment(nullable=True)
    done_at: datetime | None = _moment(nullable=True)
    submission_version: int = 0  # the latest survey version; 0 = none yet
    created_at: datetime = _moment()
    updated_at: datetime = _moment()
    cancelled_at: datetime | None = _moment(nullable=True)
    cancel_reason: str | None = Field(
        default=None, max_length=60
    )  # participant_exited | participant_erased | graduation_reversed


class MonevSurvey(MonevBase, table=True):
    """Every submitted survey version is kept; the task's submission_version names the one in force."""

    __tablename__ = "monev_surveys"
    __table_args__ = (UniqueConstraint("task_id", "version", name="monev_surveys_task_version"),)

    id: str = Field(primary_key=True, max_length=40)
    task_id: str = Field(foreign_key="monev_tasks.id", index=True, max_length=40)
    version: int
    visit_date: date
    respondent: str = Field(max_length=40)  # relationship to the participant, never a name
    business_status: str = Field(max_length=10)
    business_field: str | None = Field(default=None, max_length=40)
    # the figures below are None once the participant is erased (see erased_at)
    monthly_revenue: int | None = None
    monthly_household_income: int | None = None
    household_size: int | None = None
    workers_employed: int | None = None
    business_assets: int | None = None
    savings: int | None = None
    assistance_still_received: list[str] = Field(default_factory=list, sa_type=JSONB)
    welfare_self_assessment: int | None = None
    voluntary_exit_statement: bool
    notes_encrypted: str | None = None  # free text may name people: AES-GCM at rest, never in events
    correction_reason: str | None = Field(default=None, max_length=500)
    # a visit before the task's due date, accepted with a reason (encrypted like the notes)
    early: bool = Field(default=False, sa_column_kwargs={"server_default": "false"})
    early_reason_encrypted: str | None = None
    # computed measures (formula_version says which formulas)
    formula_version: str = Field(max_length=20)
    baseline_monthly_income: int | None = None
    baseline_household_size: int | None = None
    income_change: int | None = None
    income_per_member: int | None = None
    income_per_member_change: int | None = None
    welfare_index: float | None = None
    independence_index: float | None = None
    submitted_by: str = Field(max_length=64)
    submitted_at: datetime = _moment()
    # erasure of the participant (UU PDP): figures, measures and notes blanked; what statistics count
    # in aggregate stays (visit date, business status and field, assistance codes, exit statement)
    erased_at: datetime | None = _moment(nullable=True)


class BaselineParticipant(MonevBase, table=True):
    """Read model fed by participant.registered / participant.updated: the facts Monev compares against."""

    __tablename__ = "monev_baselines"

    participant_id: str = Field(primary_key=True, max_length=64)
    region_code: str | None = Field(default=None, max_length=10)
    household_size: int | None = None
    baseline_monthly_income: int | None = None
    household_id: str | None = Field(default=None, max_length=40)  # the family (KPM) in the registry
    version: int
    updated_at: datetime = _moment()


class FacilitatorRegion(MonevBase, table=True):
    """A facilitator (pendamping) covers the villages under a region code prefix; new tasks there are
    assigned to them automatically (longest prefix wins, then the least loaded, then the subject id)."""

    __tablename__ = "monev_facilitator_regions"
    __table_args__ = (UniqueConstraint("subject", "region_prefix", name="monev_facilitator_region_unique"),)

    id: str = Field(primary_key=True, max_length=40)
    subject: str = Field(max_length=64, index=True)
    region_prefix: str = Field(max_length=10, index=True)
    created_by: str = Field(max_length=64)
    created_at: datetime = _moment()
