"""Thin routes of the participants service: parse, authorise, call a use case, shape the answer."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import policy
from pena.access import region_prefix as plain_prefix
from pena.auth import Principal
from pena.http.deps import ClockDep, SettingsDep, get_runtime, session_dependency
from pena.http.imports import import_routes
from pena.http.lean import LeanRoute
from pena.http.openapi import CsvResponse
from pena.http.tabular import XLSX_MEDIA_TYPE, Column, tabular_response
from pena.idempotency import IdempotencyKey
from pena.pagination import Page, Paging
from pena.problems import problem_response
from pena.settings import Settings
from services.participants import changes, erasure, exports, households, imports, reads, regions, registration, status
from services.participants.etag import etag, version_etag
from services.participants.models import Participant
from services.participants.schemas import (
    BusinessField,
    ChangeRead,
    ErasureCommand,
    HouseholdRead,
    LookupCommand,
    ParticipantCreate,
    ParticipantRead,
    ParticipantSummaryRead,
    ParticipantUpdate,
    Programme,
    RegionRead,
    StatusChangeCommand,
)
from services.participants.views import new_view, view

Session = Annotated[AsyncSession, session_dependency("participants")]
# every route declares its policy (pena.access): the permission, and how it scopes its records
Reader = Annotated[Principal, policy("participants:read", "region")]
Writer = Annotated[Principal, policy("participants:write", "region")]
Eraser = Annotated[Principal, policy("participants:erase", "region")]
# exports have their own scope: a whole region's identities in one file
Exporter = Annotated[Principal, policy("participants:export", "region")]
# reference data: not object-scoped
ReferenceReader = Annotated[Principal, policy("participants:read", "none")]
# an import is seen by whoever started it (and admins)
Uploader = Annotated[Principal, policy("participants:write", "assigned")]
IfMatch = Annotated[str | None, Header(description="the ETag of the version you read")]
Purpose = Annotated[str | None, Header(alias="X-Purpose", max_length=200, description="why the data is read (audited)")]

# LeanRoute: a valid registration skips FastAPI's dependency solver (pena/http/lean.py); every
# route keeps its declared policy, OpenAPI document and errors
router = APIRouter(prefix="/v1/participants", tags=["participants"], route_class=LeanRoute)


def _read(participant: Participant, principal: Principal, settings: Settings) -> ParticipantRead:
    return ParticipantRead.model_validate(view(participant, principal=principal, settings=settings))


def _answer(participant: Participant, principal: Principal, settings: Settings, status: int = 200) -> JSONResponse:
    return JSONResponse(
        _read(participant, principal, settings).model_dump(mode="json"),
        status_code=status,
        headers={"ETag": etag(participant), "Location": f"/v1/participants/{participant.id}"},
    )


# a Kemendagri code prefix, dotted (13.71) or plain (1371), filtered in plain digits (the kernel's normaliser)
CodePrefix = Annotated[
    str | None,
    BeforeValidator(lambda value: plain_prefix(value) or value),
    Query(pattern=r"^\d{1,10}$", description="Kemendagri code prefix, e.g. 1371 or 13.71"),
]


def _filters(
    region_prefix: CodePrefix = None,
    status: Annotated[str | None, Query(pattern=r"^(candidate|active|graduated|exited|erased)$")] = None,
    business_field: BusinessField | None = None,
    programme: Programme | None = None,
    dtsen_decile: Annotated[int | None, Query(ge=1, le=10)] = None,
    flagged: Annotated[bool | None, Query(description="possible duplicates to review (admins)")] = None,
) -> reads.ParticipantFilter:
    return reads.ParticipantFilter(
        region_prefix=region_prefix,
        status=status,
        business_field=business_field,
        programme=programme,
        dtsen_decile=dtsen_decile,
        flagged=flagged,
    )


Filters = Annotated[reads.ParticipantFilter, Depends(_filters)]


# ------------------------------------------------------------------ collection


@router.post("", status_code=201, response_model=ParticipantRead, summary="Register a participant")
async def register_participant(
    body: ParticipantCreate,
    request: Request,
    principal: Writer,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    # the hot path: no session dependency (the registration is one statement on the raw pool), the
    # service's settings and clock taken from the runtime, the answer built from the validated input
    service = get_runtime(request).services["participants"]
    if idempotency_key:
        participant, answered = await registration.register_with_key(
            service.db,
            actor=principal,
            settings=service.settings,
            clock=service.clock,
            data=body,
            client_id=principal.client_id or principal.subject,
            key=idempotency_key,
        )
        return _answer(participant, principal, service.settings, status=answered)
    values = await registration.register_new(
        service.db, actor=principal, settings=service.settings, clock=service.clock, data=body
    )
    answer = ParticipantRead.model_validate(new_view(values, body, principal=principal))
    return Response(
        answer.model_dump_json(),
        status_code=201,
        media_type="application/json",
        headers={"ETag": version_etag(values["version"]), "Location": f"/v1/participants/{values['id']}"},
    )


@router.get("", response_model=Page[ParticipantSummaryRead], summary="Participants in your unit, filtered, by cursor")
async def list_participants(
    session: Session,
    settings: SettingsDep,
    principal: Reader,
    filters: Filters,
    page: Paging,
) -> Page[ParticipantSummaryRead]:
    return await reads.participants_page(
        session,
        principal=principal,
        settings=settings,
        filters=filters,
        page=page,
    )


@router.get(
    "/export.csv",
    summary="CSV export with the list's filters (NIK masked without participants:read_nik)",
    response_class=CsvResponse,
)
async def export_participants(
    session: Session, settings: SettingsDep, principal: Exporter, filters: Filters
) -> Response:
    body = await exports.participants_csv(session, principal=principal, settings=settings, filters=filters)
    return Response(
        body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="participants.csv"'},
    )


@router.get(
    "/export.xlsx",
    summary="XLSX export with the list's filters (NIK masked without participants:read_nik)",
    response_class=Response,
    responses={200: {"content": {XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}}},
)
async def export_participants_xlsx(
    session: Session, settings: SettingsDep, principal: Exporter, filters: Filters
) -> Response:
    rows = await exports.participants_rows(session, principal=principal, settings=settings, filters=filters)
    columns = [Column(c) for c in exports.EXPORT_COLUMNS]
    return tabular_response("xlsx", filename="participants", columns=columns, rows=rows)


@router.post(
    "/lookup", response_model=ParticipantRead, summary="Find a participant by NIK (in the body, never the URL)"
)
async def lookup_participant(
    request: Request,
    body: LookupCommand,
    session: Session,
    settings: SettingsDep,
    principal: Reader,
    purpose: Purpose = None,
) -> JSONResponse:
    reads.lookup_limiter(request.app.state, settings).hit(principal.subject, principal.client_id or "")
    participant = await reads.lookup(session, principal=principal, settings=settings, nik=body.nik, purpose=purpose)
    if participant is None:  # answered, not raised: the lookup's audit row commits
        return problem_response(
            404, "Not found", "no participant with this NIK (or it is outside your unit)", type_="not-found"
        )
    return _answer(participant, principal, settings)


@router.get("/regions", response_model=list[RegionRead], summary="Region reference data (Kemendagri codes)")
async def list_regions(
    session: Session,
    _: ReferenceReader,
    prefix: CodePrefix = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> list[RegionRead]:
    return [
        RegionRead.model_validate(r, from_attributes=True)
        for r in await regions.list_regions(session, prefix=prefix, limit=limit)
    ]


# ------------------------------------------------------------------ bulk import

# POST /imports, GET /imports/templates/participants, GET /imports/{id} and /imports/{id}/errors
import_routes(
    router, kinds=imports.KINDS, session_type=Session, writer=Writer, viewer=Uploader, reference=ReferenceReader
)


# ------------------------------------------------------------------ one participant


@router.get("/{participant_id}", response_model=ParticipantRead, summary="One participant (ETag for updates)")
async def get_participant(
    participant_id: str, session: Session, settings: SettingsDep, principal: Reader, purpose: Purpose = None
) -> JSONResponse:
    participant = await reads.get_participant(
        session, principal=principal, participant_id=participant_id, purpose=purpose
    )
    return _answer(participant, principal, settings)


@router.patch("/{participant_id}", response_model=ParticipantRead, summary="Correct registry facts (If-Match, reason)")
async def update_participant(
    participant_id: str,
    body: ParticipantUpdate,
    session: Session,
    settings: SettingsDep,
    clock: ClockDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> JSONResponse:
    participant = await changes.update_participant(
        session,
        principal=principal,
        settings=settings,
        clock=clock,
        participant_id=participant_id,
        if_match=if_match,
        data=body,
    )
    return _answer(participant, principal, settings)


@router.post("/{participant_id}/status", response_model=ParticipantRead, summary="Move the status")
async def change_status(
    participant_id: str,
    body: StatusChangeCommand,
    session: Session,
    settings: SettingsDep,
    clock: ClockDep,
    principal: Writer,
    if_match: IfMatch = None,
) -> JSONResponse:
    participant = await status.change_status(
        session,
        principal=principal,
        settings=settings,
        clock=clock,
        participant_id=participant_id,
        if_match=if_match,
        data=body,
    )
    return _answer(participant, principal, settings)


@router.post("/{participant_id}/erasure", response_model=ParticipantRead, summary="Erase personal data (UU PDP)")
async def erase_participant(
    participant_id: str,
    body: ErasureCommand,
    session: Session,
    settings: SettingsDep,
    clock: ClockDep,
    principal: Eraser,
) -> JSONResponse:
    participant = await erasure.erase(
        session, principal=principal, settings=settings, clock=clock, participant_id=participant_id, reason=body.reason
    )
    return _answer(participant, principal, settings)


@router.get("/{participant_id}/history", response_model=list[ChangeRead], summary="Who changed which fields, when")
async def participant_history(participant_id: str, session: Session, principal: Reader) -> list[ChangeRead]:
    changes = await reads.history(session, principal=principal, participant_id=participant_id)
    return [ChangeRead.model_validate(c, from_attributes=True) for c in changes]


# ------------------------------------------------------------------ households (KPM)


@router.get("/households/{household_id}", response_model=HouseholdRead, summary="A family (KPM): members and status")
async def get_household(household_id: str, session: Session, principal: Reader) -> HouseholdRead:
    return await households.read_household(session, principal=principal, household_id=household_id)
