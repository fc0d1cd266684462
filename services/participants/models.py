"""Tables of the participants service, on its own SQLModel registry (its database holds only these plus
the kernel tables).

Identity data never sits in the clear: NIK, KK number, name, birth date and baseline income are
AES-GCM ciphertexts; the NIK is found through `nik_token` (keyed HMAC, unique), possible duplicates
through `identity_hash` (keyed HMAC of normalised name + birth date). Coarse facts that filters need
(region, sex, birth year, business field, programmes, decile) are plain."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import DateTime, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

# Each service keeps its tables on its own registry, so its database holds only its own tables.
table_registry = registry()


class ParticipantsBase(SQLModel, registry=table_registry):
    pass


def _moment(nullable: bool = False) -> Any:
    return Field(default=None, sa_type=DateTime(timezone=True), nullable=nullable)


class Participant(ParticipantsBase, table=True):
    """One productive-age member of a KPM. status: candidate -> active -> graduated | exited; erased
    is terminal (personal fields blanked, non-personal facts kept for statistics)."""

    __tablename__ = "participants"
    __table_args__ = (
        # unique: two registrations of one NIK, even concurrent ones, leave exactly one record;
        # NULL after erasure, so erased people do not block anything
        Index("participants_nik_token", "nik_token", unique=True),
        Index("participants_identity_hash", "identity_hash"),
        Index("participants_created_id", "created_at", "id"),
        Index("participants_region", "region_code", postgresql_ops={"region_code": "text_pattern_ops"}),
        Index("participants_household", "household_id"),
        # the admins' duplicate review (flagged = true, rare) in the list's order; the other filters
        # (status, business field, decile, programme) have no index of their own: a page walks
        # participants_created_id, or participants_region for a unit (part_indexes_01)
        Index("participants_flagged_created", "created_at", "id", postgresql_where=text("flagged")),
    )

    id: str = Field(primary_key=True, max_length=40)
    nik_token: str | None = Field(default=None, max_length=64)
    kk_token: str | None = Field(default=None, max_length=64)  # links a household without revealing it
    identity_hash: str | None = Field(default=None, max_length=64)
    household_id: str | None = Field(default=None, max_length=40)  # the family (KPM), see Household
    nik_enc: str | None = Field(default=None, sa_type=Text)
    kk_enc: str | None = Field(default=None, sa_type=Text)
    name_enc: str | None = Field(default=None, sa_type=Text)
    birth_date_enc: str | None = Field(default=None, sa_type=Text)
    baseline_income_enc: str | None = Field(default=None, sa_type=Text)
    # address, phone, business description and potential notes: one encrypted JSON document
    profile_enc: str | None = Field(default=None, sa_type=Text)
    # the consent record is the lawful basis of processing: kept after erasure as evidence
    consent_purpose: str | None = Field(default=None, max_length=300)
    consent_given_on: date | None = None
    consent_recorded_by: str | None = Field(default=None, max_length=200)
    # the NIK's first six digits (region of first registration): shown in masked NIKs after erasure too
    nik_region: str | None = Field(default=None, max_length=6)
    sex: str | None = Field(default=None, max_length=1)
    birth_year: int | None = None
    region_code: str = Field(max_length=10)
    business_field: str | None = Field(default=None, max_length=40)
    assistance_programmes: list[str] = Field(default_factory=list, sa_type=JSONB)
    dtsen_decile: int | None = Field(default=None)
    household_size: int | None = None
    status: str = Field(max_length=12)
    version: int = 1
    possible_duplicate_of: str | None = Field(default=None, max_length=40)
    flagged: bool = Field(default=False)
    graduation_decided_at: datetime | None = _moment(nullable=True)  # newest decision applied
    created_by: str | None = Field(default=None, max_length=200)
    created_at: datetime = _moment()
    updated_at: datetime = _moment()
    erased_at: datetime | None = _moment(nullable=True)


class Household(ParticipantsBase, table=True):
    """A KPM (Keluarga Penerima Manfaat): one family card, known by the keyed token of its KK number.
    Every participant links to exactly one (`Participant.household_id`). Registrations of members lock
    the row, so the per-KPM limit of active participants holds under concurrent registrations. After
    the erasure of its last member the token is blanked (the row stays: statistics count families)."""

    __tablename__ = "households"
    __table_args__ = (Index("households_kk_token", "kk_token", unique=True),)

    id: str = Field(primary_key=True, max_length=40)
    kk_token: str | None = Field(default=None, max_length=64)
    created_at: datetime = _moment()
    updated_at: datetime = _moment()


class ParticipantChange(ParticipantsBase, table=True):
    """History: who changed what and when. Field names only, never the personal values."""

    __tablename__ = "participant_changes"
    __table_args__ = (Index("participant_changes_participant_version", "participant_id", "version"),)

    id: int | None = Field(default=None, primary_key=True)
    participant_id: str = Field(max_length=40)
    version: int
    action: str = Field(max_length=30)  # registered, updated, status_changed, erased
    changed_fields: list[str] = Field(default_factory=list, sa_type=JSONB)
    from_status: str | None = Field(default=None, max_length=12)
    to_status: str | None = Field(default=None, max_length=12)
    reason_code: str | None = Field(default=None, max_length=60)
    reason: str | None = Field(default=None, sa_type=Text)
    actor: str = Field(max_length=200)
    at: datetime = _moment()


class Region(ParticipantsBase, table=True):
    """Kemendagri region reference data (versioned: codes change when regions split)."""

    __tablename__ = "regions"

    code: str = Field(primary_key=True, max_length=10)
    name: str = Field(max_length=120)
    level: str = Field(max_length=12)  # province, regency, district, village
    version: str = Field(max_length=40)
