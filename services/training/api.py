"""Thin routes of the training service: parse, authorise, call a use case, shape the answer."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import policy
from pena.access import region_prefix as plain_prefix
from pena.auth import Principal
from pena.http.deps import ClockDep, SettingsDep, session_dependency
from pena.http.imports import import_routes
from pena.http.tabular import TABULAR_RESPONSES, tabular_response, wanted_format
from pena.idempotency import IdempotencyKey, idempotent
from pena.pagination import Page, Paging
from services.training import backfill, reference, service
from services.training.models import Enrolment
from services.training.roster import EXPORT_COLUMNS
from services.training.schemas import (
    REFERENCE_DATA_EXAMPLE,
    AttendanceCommand,
    AttendanceRead,
    BatchCreate,
    BatchRead,
    BatchStatusCommand,
    BatchSummaryRead,
    CentreCreate,
    CentreRead,
    CloseCommand,
    CloseResultRead,
    EnrolmentCreate,
    EnrolmentRead,
    EntryPolicyRead,
    RosterRead,
    WithdrawalCommand,
)

Session = Annotated[AsyncSession, session_dependency("training")]
# every route declares its policy (pena.access): the permission, and that its objects are scoped by
# centre (an operator reaches their centre, a region-narrowed integrator the centres of its region,
# admin and integrator every centre); the service answers 404 for what lies out of reach
Reader = Annotated[Principal, policy("training:read", "centre")]
Writer = Annotated[Principal, policy("training:write", "centre")]
Admin = Annotated[Principal, policy("training:admin", "national")]
ReferenceReader = Annotated[Principal, policy("training:read", "none")]  # not object-scoped
# an import run is seen by whoever started it (and admins); its rows were checked against their reach
Uploader = Annotated[Principal, policy("training:write", "assigned")]
# a code prefix, dotted (13.71) or plain (1371), filtered in plain digits (the kernel's normaliser)
RegionPrefix = Annotated[
    str | None,
    BeforeValidator(lambda value: plain_prefix(value) or value),
    Query(pattern=r"^\d{2,10}$", description="Kemendagri code prefix, dots optional (13.71)"),
]

centres = APIRouter(prefix="/v1/training-centres", tags=["training centres"])
batches = APIRouter(prefix="/v1/batches", tags=["training batches"])

# the backfill imports (services/training/backfill.py): POST /v1/batches/imports/<kind>, GET
# /v1/batches/imports/templates/<kind>, GET /v1/batches/imports/{import_id} and .../errors. A router of
# their own, included before `batches` (app.py), so POST /imports/attendance is never taken for the
# attendance of a batch "imports"; its short tag keeps the kernel's operation ids under 40 characters
imports = APIRouter(prefix="/v1/batches", tags=["imports"])
import_routes(
    imports, kinds=backfill.KINDS, session_type=Session, writer=Writer, viewer=Uploader, reference=ReferenceReader
)


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


@batches.get(
    "/reference-data",
    summary="Business fields, methods and modules (extensible reference data)",
    responses={200: {"content": {"application/json": {"example": REFERENCE_DATA_EXAMPLE}}}},
)
async def reference_data(_: ReferenceReader) -> dict[str, Any]:
    return {
        "business_fields_version": reference.BUSINESS_FIELDS_VERSION,
        "business_fields": [
            {"code": code, "label": label, "parent": parent}
            for code, (label, parent) in reference.BUSINESS_FIELDS.items()
        ],
        "methods": [{"code": code, "label": label} for code, label in reference.METHODS.items()],
        "modules": [{"code": code, "label": label} for code, label in reference.MODULES.items()],
        "statuses": list(reference.BATCH_STATUSES),
        "default_min_attendance_rate": reference.DEFAULT_MIN_ATTENDANCE_RATE,
    }


@batches.get(
    "/reference-data/entry-policies",
    response_model=list[EntryPolicyRead],
    summary="Entry-rule policy versions checked at enrolment, oldest first",
)
async def entry_policies(session: Session, _: ReferenceReader) -> list[EntryPolicyRead]:
    return await service.entry_policies(session)


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


@batches.get("", response_model=Page[BatchSummaryRead], summary="Batches, filtered, cursor-paginated by start date")
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
) -> Page[BatchSummaryRead]:
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
    return await service.get_batch(session, principal=principal, batch_id=batch_id)


@batches.post("/{batch_id}/status", response_model=BatchRead, summary="Move a batch: planned, open, running, cancelled")
async def change_status(
    batch_id: str, body: BatchStatusCommand, session: Session, clock: ClockDep, principal: Writer
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
    settings: SettingsDep,
    principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        enrolment = await service.enrol(
            session,
            principal=principal,
            clock=clock,
            batch_id=batch_id,
            participant_id=body.participant_id,
            override_reason=body.override_reason,
            exit_agreement=body.exit_agreement,
            business_timezone=settings.business_timezone,
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
    body: WithdrawalCommand | None = None,
) -> EnrolmentRead:
    enrolment = await service.withdraw(
        session,
        principal=principal,
        clock=clock,
        batch_id=batch_id,
        participant_id=participant_id,
        reason_code=(body or WithdrawalCommand()).reason_code,
    )
    return _enrolment_read(enrolment)


@batches.post(
    "/{batch_id}/attendance",
    response_model=AttendanceRead,
    summary="Record who was present at one session (posting it again is an audited correction)",
)
async def record_attendance(
    batch_id: str, body: AttendanceCommand, session: Session, clock: ClockDep, principal: Writer
) -> AttendanceRead:
    return await service.record_attendance(session, principal=principal, clock=clock, batch_id=batch_id, data=body)


@batches.post(
    "/{batch_id}/close",
    response_model=CloseResultRead,
    summary="Close a running batch: one training.completed or training.dropped per enrolled participant",
)
async def close_batch(
    batch_id: str, session: Session, clock: ClockDep, principal: Writer, body: CloseCommand | None = None
) -> CloseResultRead:
    outcome = await service.close_batch(
        session,
        principal=principal,
        clock=clock,
        batch_id=batch_id,
        completed_at=body.completed_at if body else None,
    )
    return outcome.result


@batches.get(
    "/{batch_id}/roster",
    response_model=RosterRead,
    responses=TABULAR_RESPONSES,
    summary="Participants with attendance rates and outcomes; JSON, CSV or XLSX",
)
async def roster(batch_id: str, request: Request, session: Session, principal: Reader) -> Any:
    fmt = wanted_format(request)
    answer = await service.roster(
        session, principal=principal, batch_id=batch_id, export=None if fmt == "json" else fmt
    )
    if fmt == "json":
        return answer
    return tabular_response(
        fmt,
        filename=f"roster-{answer.batch_id}",
        columns=EXPORT_COLUMNS,
        rows=[entry.model_dump() for entry in answer.items],
    )
