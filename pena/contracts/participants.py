from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

ParticipantStatus = Literal["candidate", "active", "graduated", "exited", "erased"]


class ParticipantFacts(BaseModel):
    """Non-personal facts other services need (enrolment rules, baselines, statistics)."""

    region_code: str = Field(description="10-digit Kemendagri village code, digits only")
    sex: Literal["F", "M"] | None = None
    birth_year: int | None = None
    business_field: str | None = None
    assistance_programmes: list[str] = Field(default_factory=list)
    dtsen_decile: int | None = None
    household_size: int | None = None
    baseline_monthly_income: int | None = Field(
        default=None, description="rupiah per month at registration; monev compares against it"
    )
    status: ParticipantStatus
    household_id: str | None = Field(
        default=None, description="the family (KPM) in the registry, one per KK; None on events older than households"
    )
    kk_token: str | None = Field(
        default=None, description="HMAC-SHA256 of the KK number with the ministry key: keys the family, reveals nothing"
    )


class ParticipantRegistered(ParticipantFacts):
    participant_id: str
    version: int = Field(description="record version; consumers ignore versions older than the one they hold")
    nik_token: str = Field(description="HMAC-SHA256 of the NIK with the ministry key: matches people, reveals nothing")
    registered_at: datetime


class ParticipantUpdated(ParticipantFacts):
    participant_id: str
    version: int
    changed_fields: list[str]
    updated_at: datetime


class ParticipantStatusChanged(BaseModel):
    participant_id: str
    version: int
    from_status: ParticipantStatus
    to_status: ParticipantStatus
    reason_code: str = Field(description="short code, never free text with personal data")
    household_id: str | None = Field(default=None, description="the family (KPM) the participant belongs to")
    kk_token: str | None = Field(default=None, description="HMAC-SHA256 of the KK number: keys the family")
    changed_at: datetime
