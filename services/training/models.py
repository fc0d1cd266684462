"""Tables of the training service, on its own SQLModel registry (its database holds only these
plus the kernel tables)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import CheckConstraint, Column, DateTime, Index, String, UniqueConstraint
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

table_registry = registry()


class TrainingBase(SQLModel, registry=table_registry):
    pass


class TrainingCentre(TrainingBase, table=True):
    __tablename__ = "training_centres"

    id: str = Field(primary_key=True, max_length=40)
    name: str = Field(max_length=200)
    code: str = Field(max_length=40, sa_column_kwargs={"unique": True})
    region_code: str = Field(max_length=10, index=True)
    operators: list[str] = Field(default_factory=list, sa_type=JSONB)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))


class Batch(TrainingBase, table=True):
    __tablename__ = "batches"
    __table_args__ = (
        CheckConstraint("capacity > 0", name="batches_capacity_positive"),
        CheckConstraint("end_date >= start_date", name="batches_dates_ordered"),
        CheckConstraint("min_attendance_rate > 0 AND min_attendance_rate <= 1", name="batches_rule_range"),
        Index("batches_start_id", "start_date", "id"),
        # a backfill file's batch reference, unique within its centre: re-uploading a file finds its batches
        UniqueConstraint("centre_id", "batch_ref", name="batches_centre_batch_ref"),
    )

    id: str = Field(primary_key=True, max_length=40)
    centre_id: str = Field(foreign_key="training_centres.id", index=True, max_length=40)
    name: str | None = Field(default=None, max_length=200)
    # set by the backfill import (services/training/backfill): the client's reference for the batch;
    # batches scheduled through the API have none
    batch_ref: str | None = Field(default=None, max_length=60)
    business_field: str = Field(max_length=40, index=True)
    method: str = Field(max_length=40)
    modules: list[str] = Field(default_factory=list, sa_type=JSONB)
    start_date: date
    end_date: date
    region_code: str = Field(max_length=10, index=True)
    capacity: int
    trainers: list[str] = Field(default_factory=list, sa_type=JSONB)
    min_attendance_rate: float
    status: str = Field(max_length=20, index=True)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class BatchSession(TrainingBase, table=True):
    __tablename__ = "batch_sessions"
    # one module once a day per batch (the rule POST /v1/batches checks; a re-imported session is a duplicate)
    __table_args__ = (UniqueConstraint("batch_id", "session_date", "module", name="batch_sessions_batch_date_module"),)

    id: str = Field(primary_key=True, max_length=40)
    batch_id: str = Field(foreign_key="batches.id", index=True, max_length=40)
    session_date: date
    module: str = Field(max_length=60)
    attendance_recorded_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class Enrolment(TrainingBase, table=True):
    __tablename__ = "enrolments"
    # one enrolment per participant and batch: a second POST meets this constraint -> 409
    __table_args__ = (UniqueConstraint("batch_id", "participant_id", name="enrolments_batch_participant"),)

    id: str = Field(primary_key=True, max_length=40)
    batch_id: str = Field(foreign_key="batches.id", index=True, max_length=40)
    participant_id: str = Field(max_length=64, index=True)
    # enrolled -> withdrawn | completed | dropped
    status: str = Field(max_length=20)
    enrolled_at: datetime = Field(sa_type=DateTime(timezone=True))
    outcome_reason: str | None = Field(default=None, max_length=40)
    outcome_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    sessions_attended: int | None = None
    attendance_rate: float | None = None
    # the entry-policy version the enrolment was checked against, and the rules an admin overrode
    policy_version: str | None = Field(default=None, max_length=20)
    exit_agreement: bool | None = None  # the family's agreement to leave assistance on graduation, as sent
    overridden_rules: list[str] | None = Field(default=None, sa_type=JSONB)


class Attendance(TrainingBase, table=True):
    __tablename__ = "attendance"

    session_id: str = Field(foreign_key="batch_sessions.id", primary_key=True, max_length=40)
    participant_id: str = Field(primary_key=True, max_length=64)
    batch_id: str = Field(max_length=40, index=True)


class EligibleParticipant(TrainingBase, table=True):
    """Local read model of who may enrol, fed by participant.* events (never by the registry's tables)."""

    __tablename__ = "participant_eligibility"

    participant_id: str = Field(primary_key=True, max_length=64)
    status: str = Field(max_length=20)
    region_code: str | None = Field(default=None, sa_column=Column(String(10), nullable=True))
    # the facts the entry rules read (participant.registered / participant.updated)
    birth_year: int | None = None
    business_field: str | None = Field(default=None, max_length=40)
    assistance_programmes: list[str] | None = Field(default=None, sa_type=JSONB)
    dtsen_decile: int | None = None
    version: int
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))


class EntryPolicy(TrainingBase, table=True):
    """A version of the entry rules checked at enrolment (services/training/entry_rules.py): the version
    whose effective_from is the latest on or before the enrolment's business date applies. Versions are
    added, never changed (an enrolment records the version it was checked against)."""

    __tablename__ = "entry_policies"

    version: str = Field(primary_key=True, max_length=20)
    effective_from: date = Field(sa_column_kwargs={"unique": True})
    parameters: dict = Field(sa_type=JSONB)
    source: str = Field(max_length=300)
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
