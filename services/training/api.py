"""Thin routes of the training service: parse, authorise, call a use case, shape the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal, require
from pena.http.deps import ClockDep, session_dependency
from pena.idempotency import IdempotencyKey, idempotent
from pena.pagination import Page, Paging
from services.training import reference, service
from services.training.models import Enrolment
from services.training.schemas import (
    AttendanceIn,
    AttendanceRead,
    BatchCreate,
    BatchRead,
    BatchSummary,
    CentreCreate,
    CentreRead,
    CloseIn,
    CloseResult,
    EnrolmentCreate,
    EnrolmentRead,
    Roster,
    StatusChange,
    WithdrawalIn,
)

Session = Annotated[AsyncSession, session_dependency("training")]
Reader = Annotated[Principal, Depends(require("training:read"))]
Writer = Annotated[Principal, Depends(require("training:write"))]
Admin = Annotated[Principal, Depends(require("training:admin"))]
RegionPrefix = Annotated[str | None, Query(pattern=r"^\d{2,10}$", description="Kemendagri code prefix")]

centres = APIRouter(prefix="/v1/training-centres", tags=["training centres"])
batches = APIRouter(prefix="/v1/batches", tags=["training batches"])


def _enrolment_read(enrolment: Enrolment) -> EnrolmentRead:
    return EnrolmentRead.model_validate(enrolment, from_attributes=True)


# ------------------------------------------------------------------ centres


@centres.post("", status_code=201, response_model=CentreRead, summary="Create a training centre (admin)")
async def create_centre(
    body: CentreCreate, session: Session, clock: ClockDep, principal: Admin, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        centre = await service.create_centre(session, principal=principal, clock=clock, data=body)
        return 201, service.centre_read(centre).model_dump(mode="json")

    return await idempotent(
        session,
        principal=principal,
        key=idempotency_key,
        scope="training.centre",
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@centres.get("", response_model=Page[CentreRead], summary="Training centres (an operator sees only their own)")
async def list_centres(
    session: Session,
    principal: Reader,
    page: Paging,
    region_prefix: RegionPrefix = None,
) -> Page[CentreRead]:
    return await service.list_centres(
        session,
        principal=principal,
        region_prefix=region_prefix,
        page=page,
    )


@centres.get("/{centre_id}", response_model=CentreRead, summary="One training centre")
async def get_centre(centre_id: str, session: Session, principal: Reader) -> CentreRead:
    return service.centre_read(await service.get_centre(session, principal=principal, centre_id=centre_id))


# ------------------------------------------------------------------ batches


@batches.get("/reference-data", summary="Business fields, methods and modules (extensible reference data)")
async def reference_data(_: Reader) -> dict[str, Any]:
    return {
        "business_fields": [
            {"code": code, "label": label, "parent": parent}
            for code, (label, parent) in reference.BUSINESS_FIELDS.items()
        ],
        "methods": [{"code": code, "label": label} for code, label in reference.METHODS.items()],
        "modules": [{"code": code, "label": label} for code, label in reference.MODULES.items()],
        "statuses": list(reference.BATCH_STATUSES),
        "default_min_attendance_rate": reference.DEFAULT_MIN_ATTENDANCE_RATE,
    }


@batches.post("", status_code=201, response_model=BatchRead, summary="Schedule a batch (angkatan) at a centre")
async def create_batch(
    body: BatchCreate, session: Session, clock: ClockDep, principal: Writer, idempotency_key: IdempotencyKey = None
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        batch = await service.create_batch(session, principal=principal, clock=clock, data=body)
        return 201, (await service.batch_view(session, batch)).model_dump(mode="json")

    return await idempotent(
        session,
        principal=principal,
        key=idempotency_key,
        scope="training.batch",
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@batches.get("", response_model=Page[BatchSummary], summary="Batches, filtered, cursor-paginated by start date")
async def list_batches(
    session: Session,
    principal: Reader,
    page: Paging,
    centre_id: str | None = None,
    status: Annotated[str | None, Query(pattern="^(" + "|".join(reference.BATCH_STATUSES) + ")$")] = None,
    business_field: str | None = None,
    region_prefix: RegionPrefix = None,
    start_from: date | None = None,
    start_to: date | None = None,
) -> Page[BatchSummary]:
    return await service.list_batches(
        session,
        principal=principal,
        centre_id=centre_id,
        status=status,
        business_field=business_field,
        region_prefix=region_prefix,
        start_from=start_from,
        start_to=start_to,
        page=page,
    )


@batches.get("/{batch_id}", response_model=BatchRead, summary="One batch with its sessions")
async def get_batch(batch_id: str, session: Session, principal: Reader) -> BatchRead:
    batch = await service.load_batch(session, principal=principal, batch_id=batch_id)
    return await service.batch_view(session, batch)


@batches.post("/{batch_id}/status", response_model=BatchRead, summary="Move a batch: planned, open, running, cancelled")
async def change_status(
    batch_id: str, body: StatusChange, session: Session, clock: ClockDep, principal: Writer
) -> BatchRead:
    batch = await service.change_status(
        session, principal=principal, clock=clock, batch_id=batch_id, to=body.status, reason_code=body.reason_code
    )
    return await service.batch_view(session, batch)


@batches.post("/{batch_id}/enrolments", status_code=201, response_model=EnrolmentRead, summary="Enrol a participant")
async def enrol(
    batch_id: str,
    body: EnrolmentCreate,
    session: Session,
    clock: ClockDep,
    principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        enrolment = await service.enrol(
            session, principal=principal, clock=clock, batch_id=batch_id, participant_id=body.participant_id
        )
        return 201, _enrolment_read(enrolment).model_dump(mode="json")

    return await idempotent(
        session,
        principal=principal,
        key=idempotency_key,
        scope="training.enrolment",
        body={"batch_id": batch_id, **body.model_dump(mode="json")},
        effect=effect,
    )


@batches.post(
    "/{batch_id}/enrolments/{participant_id}/withdrawal",
    response_model=EnrolmentRead,
    summary="Withdraw a participant (emits training.dropped, reason withdrawn)",
)
async def withdraw(
    batch_id: str,
    participant_id: str,
    session: Session,
    clock: ClockDep,
    principal: Writer,
    body: WithdrawalIn | None = None,
) -> EnrolmentRead:
    enrolment = await service.withdraw(
        session,
        principal=principal,
        clock=clock,
        batch_id=batch_id,
        participant_id=participant_id,
        reason_code=(body or WithdrawalIn()).reason_code,
    )
    return _enrolment_read(enrolment)


@batches.post(
    "/{batch_id}/attendance",
    response_model=AttendanceRead,
    summary="Record who was present at one session (posting it again is an audited correction)",
)
async def record_attendance(
    batch_id: str, body: AttendanceIn, session: Session, clock: ClockDep, principal: Writer
) -> AttendanceRead:
    return await service.record_attendance(session, principal=principal, clock=clock, batch_id=batch_id, data=body)


@batches.post(
    "/{batch_id}/close",
    response_model=CloseResult,
    summary="Close a running batch: one training.completed or training.dropped per enrolled participant",
)
async def close_batch(
    batch_id: str, session: Session, clock: ClockDep, principal: Writer, body: CloseIn | None = None
) -> CloseResult:
    outcome = await service.close_batch(
        session,
        principal=principal,
        clock=clock,
        batch_id=batch_id,
        completed_at=body.completed_at if body else None,
    )
    return outcome.result


@batches.get("/{batch_id}/roster", response_model=Roster, summary="Participants with attendance rates and outcomes")
async def roster(batch_id: str, session: Session, principal: Reader) -> Roster:
    return await service.roster(session, principal=principal, batch_id=batch_id)
