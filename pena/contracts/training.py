from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field


class BatchScheduled(BaseModel):
    batch_id: str
    centre_id: str
    business_field: str
    method: str
    start_date: date
    end_date: date
    region_code: str
    capacity: int
    centre_name: str | None = Field(default=None, description="the centre's name; statistics show it next to the id")
    method_name: str | None = Field(default=None, description="the method's label in training's reference data")
    business_field_name: str | None = Field(
        default=None, description="the business field's label in training's reference data"
    )


class TrainingEnrolled(BaseModel):
    participant_id: str
    batch_id: str
    centre_id: str
    enrolled_at: datetime


class TrainingCompleted(BaseModel):
    participant_id: str
    batch_id: str
    centre_id: str
    business_field: str
    region_code: str = Field(description="region of the batch location")
    completed_at: datetime = Field(description="when the training was completed; monev counts from here")
    attendance_rate: float = Field(ge=0, le=1)
    sessions_attended: int
    sessions_total: int


class TrainingDropped(BaseModel):
    participant_id: str
    batch_id: str
    centre_id: str
    reason_code: str = Field(description="attendance_below_rule | withdrawn | batch_cancelled")
    attendance_rate: float = Field(ge=0, le=1)
    dropped_at: datetime
