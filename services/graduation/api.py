"""Thin routes of the graduation service under /v1/graduation: parse, declare the access policy, call a
use case with the caller's reach (records out of reach answer 404 like missing ones)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse
from pydantic import AwareDatetime, BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import ReachDep, policy
from pena.auth import Principal
from pena.http.deps import ClockDep, SettingsDep, session_dependency
from pena.http.tabular import TABULAR_RESPONSES, tabular_response, wanted_format
from pena.idempotency import IdempotencyKey, idempotent
from pena.pagination import Page, Paging
from services.graduation import appeals, assessments, decisions, policies, reference, relapse, statistics
from services.graduation.reference_io import parse_rows
from services.graduation.schemas import (
    AppealCreate,
    AppealDecisionCommand,
    AppealRead,
    AssessmentRead,
    DecisionCommand,
    DecisionRead,
    MinimumWageRead,
    MinimumWageUpdate,
    PolicyCreate,
    PolicyRead,
    PovertyLineRead,
    PovertyLineUpdate,
    ReferenceUpsertRead,
    RelapseRead,
    StatisticsRead,
    VerificationCommand,
)
from services.graduation.settings import GraduationSettingsDep
from services.graduation.statistics import GroupBy

router = APIRouter(prefix="/v1/graduation", tags=["graduation"])
Session = Annotated[AsyncSession, session_dependency("graduation")]
# every route declares its policy (pena.access): reference data and policy versions are not
# object-scoped; assessments, decisions, appeals and statistics are scoped by the record's region
ReferenceReader = Annotated[Principal, policy("graduation:read", "none")]
PolicyAdmin = Annotated[Principal, policy("graduation:policy", "national")]
Reader = Annotated[Principal, policy("graduation:read", "region")]
Verifier = Annotated[Principal, policy("graduation:verify", "region")]
Approver = Annotated[Principal, policy("graduation:decide", "region")]
Appellant = Annotated[Principal, policy("graduation:appeal", "region")]


def csv_or_json(row: type[BaseModel], csv_example: str) -> dict[str, Any]:
    """The request body of a reference upsert: JSON rows of `row`, or the same as CSV with a header."""
    schema = row.model_json_schema()
    return {
        "requestBody": {
            "content": {
                "application/json": {"schema": {"type": "array", "items": schema}, "example": schema["examples"]},
                "text/csv": {"schema": {"type": "string"}, "example": csv_example},
            }
        }
    }


async def _once(
    session: AsyncSession,
    principal: Principal,
    key: str | None,
    request_body: Any,
    effect: Callable[[], Awaitable[BaseModel]],
    *,
    status: int = 201,
    scope: str,
) -> JSONResponse:
    """Runs a creating effect once per Idempotency-Key (same key + same body = the first answer)."""

    async def answer() -> tuple[int, Any]:
        return status, (await effect()).model_dump(mode="json")

    return await idempotent(session, principal=principal, key=key, scope=scope, body=request_body, effect=answer)


# ------------------------------------------------------------------ reference data


@router.put(
    "/reference/minimum-wages",
    summary="Upsert UMK (4-digit regency) and UMP (2-digit province) rows per year; JSON rows or text/csv",
    openapi_extra=csv_or_json(
        MinimumWageUpdate,
        "level,region_code,year,amount,source,is_example\n"
        "umk,1371,2026,3160000,example figure for the API documentation,true\n"
        "ump,13,2026,2990000,example figure for the API documentation,true\n",
    ),
)
async def put_minimum_wages(
    request: Request, session: Session, principal: PolicyAdmin, clock: ClockDep
) -> ReferenceUpsertRead:
    rows = parse_rows(request.headers.get("content-type", ""), await request.body(), MinimumWageUpdate)
    count = await reference.upsert_minimum_wages(session, rows=rows, actor=principal, clock=clock)
    return ReferenceUpsertRead(upserted=count)


@router.get("/reference/minimum-wages", summary="Minimum wages (UMK/UMP) held")
async def get_minimum_wages(
    session: Session,
    _: ReferenceReader,
    year: Annotated[int | None, Query(ge=2000, le=2100)] = None,
    region: Annotated[str | None, Query(pattern=r"^\d{1,4}$")] = None,
) -> list[MinimumWageRead]:
    return await reference.list_minimum_wages(session, year=year, region=region)


@router.put(
    "/reference/poverty-lines",
    summary="Upsert extreme-poverty lines per year (rupiah per person per month); JSON rows or text/csv",
    openapi_extra=csv_or_json(
        PovertyLineUpdate, "year,amount,source,is_example\n2026,440000,example figure for the API documentation,true\n"
    ),
)
async def put_poverty_lines(
    request: Request, session: Session, principal: PolicyAdmin, clock: ClockDep
) -> ReferenceUpsertRead:
    rows = parse_rows(request.headers.get("content-type", ""), await request.body(), PovertyLineUpdate)
    count = await reference.upsert_poverty_lines(session, rows=rows, actor=principal, clock=clock)
    return ReferenceUpsertRead(upserted=count)


@router.get("/reference/poverty-lines", summary="Extreme-poverty lines held")
async def get_poverty_lines(session: Session, _: ReferenceReader) -> list[PovertyLineRead]:
    return await reference.list_poverty_lines(session)


# ------------------------------------------------------------------ policies


@router.get("/policies", summary="Every published policy version")
async def get_policies(session: Session, _: ReferenceReader) -> list[PolicyRead]:
    return [PolicyRead.model_validate(p) for p in await policies.list_policies(session)]


@router.post(
    "/policies",
    status_code=201,
    response_model=PolicyRead,
    summary="Publish a new policy version (past assessments keep theirs)",
)
async def post_policy(
    body: PolicyCreate,
    session: Session,
    principal: PolicyAdmin,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> BaseModel:
        return PolicyRead.model_validate(
            await policies.publish_policy(session, body=body, actor=principal, clock=clock)
        )

    return await _once(session, principal, idempotency_key, body.model_dump(mode="json"), effect, scope="policy")


@router.get("/policies/{policy_id}", summary="One policy version")
async def get_policy(policy_id: str, session: Session, _: ReferenceReader) -> PolicyRead:
    return PolicyRead.model_validate(await policies.read_policy(session, policy_id=policy_id))


# ------------------------------------------------------------------ assessments


@router.get("/assessments", summary="Assessments, newest first (cursor pagination)")
async def get_assessments(
    session: Session,
    principal: Reader,
    reach: ReachDep,
    page: Paging,
    outcome: Literal["ready", "not_ready", "cannot_assess"] | None = None,
    participant_id: str | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{1,10}$", description="region code prefix")] = None,
    status: Literal["current", "superseded"] | None = None,
) -> Page[AssessmentRead]:
    return await assessments.list_assessments(
        session,
        principal=principal,
        reach=reach,
        outcome=outcome,
        participant_id=participant_id,
        region=region,
        status=status,
        page=page,
    )


@router.get("/assessments/{assessment_id}", summary="One assessment with every criterion and reference value")
async def get_assessment(assessment_id: str, session: Session, principal: Reader, reach: ReachDep) -> AssessmentRead:
    assessment = await assessments.audited_assessment(
        session, assessment_id=assessment_id, principal=principal, reach=reach
    )
    return AssessmentRead.model_validate(assessment)


@router.post(
    "/assessments/{assessment_id}/verification",
    status_code=201,
    response_model=AssessmentRead,
    summary="Verify the evidence",
)
async def post_verification(
    assessment_id: str,
    body: VerificationCommand,
    session: Session,
    principal: Verifier,
    reach: ReachDep,
    clock: ClockDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> BaseModel:
        assessment = await assessments.verify_assessment(
            session, assessment_id=assessment_id, body=body, principal=principal, reach=reach, clock=clock
        )
        return AssessmentRead.model_validate(assessment)

    return await _once(
        session, principal, idempotency_key, body.model_dump(mode="json"), effect, scope=f"verify:{assessment_id}"
    )


@router.post(
    "/assessments/{assessment_id}/decision",
    status_code=201,
    response_model=DecisionRead,
    summary="Approve, reject or defer (four-eyes: not by the verifier)",
)
async def post_decision(
    assessment_id: str,
    body: DecisionCommand,
    session: Session,
    principal: Approver,
    reach: ReachDep,
    clock: ClockDep,
    settings: SettingsDep,
    graduation_settings: GraduationSettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> BaseModel:
        decision = await decisions.decide(
            session,
            assessment_id=assessment_id,
            body=body,
            principal=principal,
            reach=reach,
            clock=clock,
            settings=settings,
            graduation_settings=graduation_settings,
        )
        return DecisionRead.model_validate(decision)

    return await _once(
        session, principal, idempotency_key, body.model_dump(mode="json"), effect, scope=f"decide:{assessment_id}"
    )


# ------------------------------------------------------------------ decisions and appeals


@router.get("/decisions", summary="Decisions, newest first (cursor pagination)")
async def get_decisions(
    session: Session,
    principal: Reader,
    reach: ReachDep,
    page: Paging,
    outcome: Literal["approved", "rejected", "deferred", "reversed"] | None = None,
    participant_id: str | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{1,10}$", description="region code prefix")] = None,
) -> Page[DecisionRead]:
    return await decisions.list_decisions(
        session,
        principal=principal,
        reach=reach,
        outcome=outcome,
        participant_id=participant_id,
        region=region,
        page=page,
    )


@router.get("/decisions/{decision_id}", summary="One decision")
async def get_decision(decision_id: str, session: Session, principal: Reader, reach: ReachDep) -> DecisionRead:
    return DecisionRead.model_validate(
        await decisions.read_decision(session, decision_id=decision_id, principal=principal, reach=reach)
    )


@router.get("/relapses", summary="Relapse cases after graduation (mentoring visits below the poverty line)")
async def get_relapses(
    session: Session,
    principal: Reader,
    reach: ReachDep,
    page: Paging,
    status: Literal["open", "cleared"] | None = None,
    participant_id: str | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{1,10}$", description="region code prefix")] = None,
) -> Page[RelapseRead]:
    return await relapse.list_relapses(
        session,
        principal=principal,
        reach=reach,
        status=status,
        participant_id=participant_id,
        region=region,
        page=page,
    )


@router.get("/relapses/{relapse_id}", summary="One relapse case")
async def get_relapse(relapse_id: str, session: Session, principal: Reader, reach: ReachDep) -> RelapseRead:
    return RelapseRead.model_validate(
        await relapse.read_relapse(session, case_id=relapse_id, principal=principal, reach=reach)
    )


@router.post(
    "/decisions/{decision_id}/appeals",
    status_code=201,
    response_model=AppealRead,
    summary="File an objection (keberatan) on behalf of the family, within the appeal window",
)
async def post_appeal(
    decision_id: str,
    body: AppealCreate,
    session: Session,
    principal: Appellant,
    reach: ReachDep,
    clock: ClockDep,
    graduation_settings: GraduationSettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> BaseModel:
        appeal = await appeals.file_appeal(
            session,
            decision_id=decision_id,
            body=body,
            principal=principal,
            reach=reach,
            clock=clock,
            graduation_settings=graduation_settings,
        )
        return AppealRead.model_validate(appeal)

    return await _once(
        session, principal, idempotency_key, body.model_dump(mode="json"), effect, scope=f"appeal:{decision_id}"
    )


@router.get("/appeals/{appeal_id}", summary="One appeal")
async def get_appeal(appeal_id: str, session: Session, principal: Reader, reach: ReachDep) -> AppealRead:
    return AppealRead.model_validate(
        await appeals.read_appeal(session, appeal_id=appeal_id, principal=principal, reach=reach)
    )


@router.post(
    "/appeals/{appeal_id}/decision",
    status_code=201,
    response_model=AppealRead,
    summary="Uphold or reverse (by an approver other than the original decision's)",
)
async def post_appeal_decision(
    appeal_id: str,
    body: AppealDecisionCommand,
    session: Session,
    principal: Approver,
    reach: ReachDep,
    clock: ClockDep,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> BaseModel:
        appeal = await appeals.decide_appeal(
            session, appeal_id=appeal_id, body=body, principal=principal, reach=reach, clock=clock, settings=settings
        )
        return AppealRead.model_validate(appeal)

    return await _once(
        session, principal, idempotency_key, body.model_dump(mode="json"), effect, scope=f"appeal-decision:{appeal_id}"
    )


# ------------------------------------------------------------------ statistics


@router.get(
    "/statistics",
    response_model=StatisticsRead,
    responses=TABULAR_RESPONSES,
    summary="Ready / graduated / deferred / rejected on a valid date as known at a moment; JSON, CSV or XLSX",
)
async def get_statistics(
    request: Request,
    session: Session,
    settings: SettingsDep,
    clock: ClockDep,
    principal: Reader,
    reach: ReachDep,
    as_of: Annotated[date, Query(description="valid date: the situation as measured (visit) or decided (effective)")],
    known_at: Annotated[
        AwareDatetime | None, Query(description="record time: as the system knew it then (default now)")
    ] = None,
    group_by: GroupBy | None = None,
    region: Annotated[str | None, Query(pattern=r"^\d{1,10}$", description="region code prefix")] = None,
    region_digits: Annotated[
        int, Query(description="level for group_by=region: 2 province, 4 regency, 6 district, 10 village")
    ] = 4,
) -> Any:
    fmt = wanted_format(request)
    answer = await statistics.statistics(
        session,
        principal=principal,
        reach=reach,
        as_of=as_of,
        known_at=known_at,
        group_by=group_by,
        region=region,
        region_digits=region_digits,
        settings=settings,
        clock=clock,
        export=None if fmt == "json" else fmt,
    )
    if fmt == "json":
        return answer
    return tabular_response(
        fmt,
        filename=f"graduation-statistics-{as_of.isoformat()}",
        columns=statistics.EXPORT_COLUMNS,
        rows=statistics.export_rows(answer),
        min_cell_size=settings.min_cell_size,
    )
