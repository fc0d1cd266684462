"""Request (StrictModel: unknown fields refused) and response models of the training API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field

from pena.access import region_code
from pena.http.bodies import StrictModel
from services.training.reference import DEFAULT_MIN_ATTENDANCE_RATE, MODULES

VILLAGE_CODE = r"^\d{10}$"
# province (2), regency/city (4), district (6) or village (10) digits
REGION_CODE = r"^(\d{2}|\d{4}|\d{6}|\d{10})$"
REASON_CODE = r"^[a-z][a-z0-9_]{1,39}$"


def _plain(value: object) -> object:
    """The dotted Kemendagri form (13.71, 13.71.01.1001) is accepted and stored in plain digits, as in
    participants (the kernel's normaliser); anything else is left for the pattern to refuse."""
    return region_code(value) or value


RegionCode = Annotated[str, BeforeValidator(_plain), Field(pattern=REGION_CODE)]
VillageCode = Annotated[str, BeforeValidator(_plain), Field(pattern=VILLAGE_CODE)]
SubjectId = Field(min_length=1, max_length=64)


class CentreCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"name": "BBPPKS Padang", "code": "BBPPKS-PADANG", "region_code": "1371", "operators": ["op-padang-01"]}
            ]
        }
    )
    name: str = Field(min_length=2, max_length=200, examples=["BBPPKS Padang"])
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{2,40}$", examples=["BBPPKS-PADANG"])
    region_code: RegionCode = Field(examples=["1371"], description="Kemendagri code, 2/4/6/10 digits; dots optional")
    operators: list[str] = Field(default_factory=list, max_length=200, description="subject ids of the operators")


class CentreRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "name": "BBPPKS Padang",
                    "code": "BBPPKS-PADANG",
                    "region_code": "1371",
                    "operators": ["op-padang-01"],
                    "created_at": "2026-09-01T01:00:00Z",
                }
            ]
        }
    )
    id: str
    name: str
    code: str
    region_code: str
    operators: list[str]
    created_at: datetime


class PlannedSession(StrictModel):
    date: date
    module: str = Field(min_length=1, max_length=60)


class SessionRead(BaseModel):
    id: str
    date: date
    module: str
    attendance_recorded_at: datetime | None


class BatchCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "centre_id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "name": "Angkatan I Menjahit Padang 2026",
                    "business_field": "fashion_menjahit",
                    "method": "life_skill_training",
                    "modules": [
                        "pena_introduction",
                        "motivation_work_ethic",
                        "social_entrepreneurship_basics",
                        "technical_skills",
                    ],
                    "start_date": "2026-10-12",
                    "end_date": "2026-10-16",
                    "sessions": [
                        {"date": "2026-10-12", "module": "pena_introduction"},
                        {"date": "2026-10-13", "module": "motivation_work_ethic"},
                        {"date": "2026-10-14", "module": "social_entrepreneurship_basics"},
                        {"date": "2026-10-15", "module": "technical_skills"},
                    ],
                    "region_code": "1371011001",
                    "capacity": 25,
                    "trainers": ["trainer-padang-03"],
                    "min_attendance_rate": 0.8,
                }
            ]
        }
    )
    centre_id: str = Field(min_length=1, max_length=40)
    name: str | None = Field(default=None, max_length=200, examples=["Angkatan I Menjahit"])
    business_field: str = Field(min_length=1, max_length=40, examples=["fashion_menjahit"])
    method: Literal["life_skill_training", "community_based_learning"]
    modules: list[str] = Field(default_factory=lambda: list(MODULES), min_length=1, max_length=20)
    start_date: date
    end_date: date
    sessions: list[PlannedSession] = Field(default_factory=list, max_length=500)
    region_code: VillageCode = Field(description="10-digit village code of the training location; dots optional")
    capacity: int = Field(ge=1, le=1000)
    trainers: list[str] = Field(default_factory=list, max_length=50, description="subject ids of the trainers")
    min_attendance_rate: float = Field(default=DEFAULT_MIN_ATTENDANCE_RATE, gt=0, le=1)


class BatchRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "centre_id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "name": "Angkatan I Menjahit Padang 2026",
                    "business_field": "fashion_menjahit",
                    "method": "life_skill_training",
                    "modules": [
                        "pena_introduction",
                        "motivation_work_ethic",
                        "social_entrepreneurship_basics",
                        "technical_skills",
                    ],
                    "start_date": "2026-10-12",
                    "end_date": "2026-10-16",
                    "region_code": "1371011001",
                    "capacity": 25,
                    "enrolled": 23,
                    "trainers": ["trainer-padang-03"],
                    "min_attendance_rate": 0.8,
                    "status": "running",
                    "sessions": [
                        {
                            "id": "5e1a9c3b-7d2f-4b8e-a6c4-1f3d5b7a9c01",
                            "date": "2026-10-12",
                            "module": "pena_introduction",
                            "attendance_recorded_at": "2026-10-12T09:30:00Z",
                        },
                        {
                            "id": "5e1a9c3b-7d2f-4b8e-a6c4-1f3d5b7a9c02",
                            "date": "2026-10-13",
                            "module": "motivation_work_ethic",
                            "attendance_recorded_at": "2026-10-13T09:30:00Z",
                        },
                        {
                            "id": "5e1a9c3b-7d2f-4b8e-a6c4-1f3d5b7a9c03",
                            "date": "2026-10-14",
                            "module": "social_entrepreneurship_basics",
                            "attendance_recorded_at": "2026-10-14T09:30:00Z",
                        },
                        {
                            "id": "5e1a9c3b-7d2f-4b8e-a6c4-1f3d5b7a9c04",
                            "date": "2026-10-15",
                            "module": "technical_skills",
                            "attendance_recorded_at": "2026-10-15T09:30:00Z",
                        },
                    ],
                    "created_at": "2026-09-28T02:00:00Z",
                    "updated_at": "2026-10-12T00:45:00Z",
                    "completed_at": None,
                }
            ]
        }
    )
    id: str
    centre_id: str
    name: str | None
    batch_ref: str | None = Field(default=None, description="the backfill file's reference, for imported batches")
    business_field: str
    method: str
    modules: list[str]
    start_date: date
    end_date: date
    region_code: str
    capacity: int
    enrolled: int
    trainers: list[str]
    min_attendance_rate: float
    status: str
    sessions: list[SessionRead]
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


class BatchSummaryRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "centre_id": "0c8e5b1a-3f2d-4e6a-9b7c-5d4e3f2a1b0c",
                    "name": "Angkatan I Menjahit Padang 2026",
                    "business_field": "fashion_menjahit",
                    "method": "life_skill_training",
                    "start_date": "2026-10-12",
                    "end_date": "2026-10-16",
                    "region_code": "1371011001",
                    "capacity": 25,
                    "status": "running",
                }
            ]
        }
    )
    id: str
    centre_id: str
    name: str | None
    batch_ref: str | None = None
    business_field: str
    method: str
    start_date: date
    end_date: date
    region_code: str
    capacity: int
    status: str


class BatchStatusCommand(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "open", "reason_code": None}]})
    status: Literal["planned", "open", "running", "completed", "cancelled"]
    reason_code: str | None = Field(default=None, pattern=REASON_CODE)


class EnrolmentCreate(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10", "override_reason": None}]
        }
    )
    participant_id: str = SubjectId
    exit_agreement: bool = Field(
        default=False,
        description="the family agrees to leave social assistance on graduation (an entry rule of the policy)",
    )
    override_reason: str | None = Field(
        default=None,
        min_length=5,
        max_length=500,
        description=(
            "admin only: why a participant from outside the regions the batch's centre serves, or one failing "
            "entry rules, is enrolled (audited with the rules overridden; no NIK, KK number or name)"
        ),
    )


class EnrolmentRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "c7e9a1b3-5d7f-4c1e-9a3b-5d7f9a1c3e5b",
                    "batch_id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "status": "enrolled",
                    "enrolled_at": "2026-10-05T03:20:00Z",
                    "outcome_reason": None,
                    "outcome_at": None,
                }
            ]
        }
    )
    id: str
    batch_id: str
    participant_id: str
    status: str
    enrolled_at: datetime
    outcome_reason: str | None
    outcome_at: datetime | None
    policy_version: str | None = Field(
        default=None, description="the entry-policy version checked; None for enrolments older than entry rules"
    )
    exit_agreement: bool | None = Field(
        default=None, description="the family agreed to leave assistance on graduation; None before entry rules"
    )
    overridden_rules: list[str] | None = Field(default=None, description="entry rules an admin overrode")


class WithdrawalCommand(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason_code": "moved_away"}]})
    reason_code: str = Field(
        default="withdrawn", pattern=REASON_CODE, description="short code, never free text with personal data"
    )


class AttendanceCommand(StrictModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": None,
                    "session_date": "2026-10-12",
                    "present": ["6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10", "a3d5f7b9-2c4e-4a6b-8d0f-1e3a5c7e9b2d"],
                }
            ]
        }
    )
    session_id: str | None = Field(default=None, max_length=40)
    session_date: date | None = None
    present: list[str] = Field(max_length=1000, description="participant ids present; everyone else was absent")


class AttendanceRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "session_id": "5e1a9c3b-7d2f-4b8e-a6c4-1f3d5b7a9c01",
                    "session_date": "2026-10-12",
                    "module": "pena_introduction",
                    "present": 21,
                    "absent": 2,
                    "corrected": False,
                    "recorded_at": "2026-10-12T09:30:00Z",
                }
            ]
        }
    )
    session_id: str
    session_date: date
    module: str
    present: int
    absent: int
    corrected: bool
    recorded_at: datetime


class CloseCommand(StrictModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"completed_at": "2026-10-16T09:00:00+07:00"}]})
    completed_at: AwareDatetime | None = Field(
        default=None, description="completion time of a historical batch; defaults to now"
    )


class Outcome(BaseModel):
    participant_id: str
    outcome: Literal["completed", "dropped"]
    sessions_attended: int
    sessions_total: int
    attendance_rate: float


class CloseResultRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batch_id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "status": "completed",
                    "completed_at": "2026-10-16T02:00:00Z",
                    "min_attendance_rate": 0.8,
                    "sessions_total": 4,
                    "outcomes": [
                        {
                            "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                            "outcome": "completed",
                            "sessions_attended": 4,
                            "sessions_total": 4,
                            "attendance_rate": 1.0,
                        },
                        {
                            "participant_id": "a3d5f7b9-2c4e-4a6b-8d0f-1e3a5c7e9b2d",
                            "outcome": "dropped",
                            "sessions_attended": 2,
                            "sessions_total": 4,
                            "attendance_rate": 0.5,
                        },
                    ],
                }
            ]
        }
    )
    batch_id: str
    status: str
    completed_at: datetime
    min_attendance_rate: float
    sessions_total: int
    outcomes: list[Outcome]


class RosterEntry(BaseModel):
    participant_id: str
    status: str
    enrolled_at: datetime
    sessions_attended: int
    sessions_total: int
    attendance_rate: float
    outcome_reason: str | None
    outcome_at: datetime | None


class RosterRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "batch_id": "9a7b6c5d-4e3f-4a2b-8c1d-0e9f8a7b6c5d",
                    "status": "running",
                    "sessions_total": 4,
                    "min_attendance_rate": 0.8,
                    "items": [
                        {
                            "participant_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                            "status": "enrolled",
                            "enrolled_at": "2026-10-05T03:20:00Z",
                            "sessions_attended": 2,
                            "sessions_total": 4,
                            "attendance_rate": 0.5,
                            "outcome_reason": None,
                            "outcome_at": None,
                        }
                    ],
                }
            ]
        }
    )
    batch_id: str
    status: str
    sessions_total: int
    min_attendance_rate: float
    items: list[RosterEntry]


# the answer of GET /v1/batches/reference-data (a free-form object: the reference data is extensible)
REFERENCE_DATA_EXAMPLE = {
    "business_fields_version": "2026.1",
    "business_fields": [
        {"code": "konveksi", "label": "Konveksi (garment making)", "parent": "fashion_menjahit"},
        {"code": "makanan_berat", "label": "Makanan berat (cooked meals)", "parent": "kuliner"},
    ],
    "methods": [{"code": "life_skill_training", "label": "Life skill training: applied, practised at once"}],
    "modules": [{"code": "pena_introduction", "label": "The PENA programme"}],
    "statuses": ["planned", "open", "running", "completed", "cancelled"],
    "default_min_attendance_rate": 0.8,
}


class EntryParametersRead(BaseModel):
    min_age: int
    max_age: int
    kpm_programmes: list[str]
    max_dtsen_decile: int | None
    require_business: bool
    require_exit_agreement: bool


class EntryPolicyRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "version": "2023.1",
                    "effective_from": "2023-01-01",
                    "parameters": {
                        "min_age": 18,
                        "max_age": 64,
                        "kpm_programmes": ["PKH", "BPNT"],
                        "max_dtsen_decile": 4,
                        "require_business": True,
                        "require_exit_agreement": True,
                    },
                    "source": "PENA programme selection: productive-age members of KPM in PKH/BPNT (DTSEN deciles"
                    " 1-4) who run or plan a small business and agree to leave assistance once independent",
                }
            ]
        }
    )
    version: str
    effective_from: date
    parameters: EntryParametersRead
    source: str
