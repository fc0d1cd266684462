"""Request (StrictModel: unknown fields refused) and response models of the training API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, Field

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
    name: str = Field(min_length=2, max_length=200, examples=["BBPPKS Padang"])
    code: str = Field(pattern=r"^[A-Za-z0-9_-]{2,40}$", examples=["BBPPKS-PADANG"])
    region_code: RegionCode = Field(examples=["1371"], description="Kemendagri code, 2/4/6/10 digits; dots optional")
    operators: list[str] = Field(default_factory=list, max_length=200, description="subject ids of the operators")


class CentreRead(BaseModel):
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
    id: str
    centre_id: str
    name: str | None
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
    id: str
    centre_id: str
    name: str | None
    business_field: str
    method: str
    start_date: date
    end_date: date
    region_code: str
    capacity: int
    status: str


class BatchStatusCommand(StrictModel):
    status: Literal["planned", "open", "running", "completed", "cancelled"]
    reason_code: str | None = Field(default=None, pattern=REASON_CODE)


class EnrolmentCreate(StrictModel):
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
    reason_code: str = Field(
        default="withdrawn", pattern=REASON_CODE, description="short code, never free text with personal data"
    )


class AttendanceCommand(StrictModel):
    session_id: str | None = Field(default=None, max_length=40)
    session_date: date | None = None
    present: list[str] = Field(max_length=1000, description="participant ids present; everyone else was absent")


class AttendanceRead(BaseModel):
    session_id: str
    session_date: date
    module: str
    present: int
    absent: int
    corrected: bool
    recorded_at: datetime


class CloseCommand(StrictModel):
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
    batch_id: str
    status: str
    sessions_total: int
    min_attendance_rate: float
    items: list[RosterEntry]


class EntryParametersRead(BaseModel):
    min_age: int
    max_age: int
    kpm_programmes: list[str]
    max_dtsen_decile: int | None
    require_business: bool
    require_exit_agreement: bool


class EntryPolicyRead(BaseModel):
    version: str
    effective_from: date
    parameters: EntryParametersRead
    source: str
