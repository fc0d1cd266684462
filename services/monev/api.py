"""Thin routes of the monev service: parse, declare the access policy (`pena.access.policy`), call a
use case. Tasks are scoped `assigned` (a facilitator their own, region reach its region's), the summary
by `region`, facilitator coverage and manual assignment need national reach."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import policy
from pena.auth import Principal
from pena.http.deps import ClockDep, SettingsDep, session_dependency
from pena.http.imports import import_routes
from pena.http.tabular import TABULAR_RESPONSES, tabular_response, wanted_format
from pena.idempotency import IdempotencyKey, idempotent
from pena.pagination import Page, Paging
from services.monev import assignment, summary, survey_imports, surveys, tasks, views
from services.monev.schemas import (
    AssignmentCommand,
    FacilitatorRegionCreate,
    FacilitatorRegionRead,
    SummaryRead,
    SurveyCreate,
    SurveyRead,
    TaskFilter,
    TaskKind,
    TaskRead,
    TaskStatus,
    TaskSummaryRead,
)

Session = Annotated[AsyncSession, session_dependency("monev")]
TaskReader = Annotated[Principal, policy("monev:read", "assigned")]
TaskSubmitter = Annotated[Principal, policy("monev:submit", "assigned")]
SummaryReader = Annotated[Principal, policy("monev:read", "region")]
# coverage of every region and reassignment across them: programme administration, national reach
Assigner = Annotated[Principal, policy("monev:assign", "national")]
# survey results in bulk: the facilitator (their own tasks) or an admin, as one survey; a run is seen by
# its uploader and admins; the template holds no record
Importer = Annotated[Principal, policy("monev:submit", "assigned")]
TemplateReader = Annotated[Principal, policy("monev:submit", "none")]
RegionPrefix = Annotated[str | None, Query(pattern=r"^\d{2,10}$", description="Kemendagri code prefix")]

router = APIRouter(prefix="/v1/monev", tags=["monev"])


# ------------------------------------------------------------------ facilitators


@router.post(
    "/facilitators",
    status_code=201,
    response_model=FacilitatorRegionRead,
    summary="A facilitator covers a region prefix: new tasks there are assigned to them (admin)",
)
async def add_facilitator_region(
    body: FacilitatorRegionCreate,
    session: Session,
    clock: ClockDep,
    principal: Assigner,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        row = await assignment.add_facilitator_region(session, principal=principal, clock=clock, data=body)
        return 201, assignment.facilitator_region_read(row).model_dump(mode="json")

    return await idempotent(
        session,
        principal=principal,
        key=idempotency_key,
        scope="monev.facilitator_region",
        body=body.model_dump(mode="json"),
        effect=effect,
    )


@router.get("/facilitators", response_model=Page[FacilitatorRegionRead], summary="Facilitator region coverage")
async def list_facilitator_regions(
    session: Session,
    _: Assigner,
    page: Paging,
    subject: str | None = None,
) -> Page[FacilitatorRegionRead]:
    return await assignment.list_facilitator_regions(session, subject=subject, page=page)


@router.delete("/facilitators/{coverage_id}", status_code=204, summary="Remove a facilitator's region coverage")
async def remove_facilitator_region(coverage_id: str, session: Session, principal: Assigner) -> Response:
    await assignment.remove_facilitator_region(session, principal=principal, coverage_id=coverage_id)
    return Response(status_code=204)


# ------------------------------------------------------------------ tasks


@router.get(
    "/tasks",
    response_model=Page[TaskSummaryRead],
    summary="Follow-up tasks by due time (a facilitator sees only their own)",
)
async def list_tasks(
    session: Session,
    principal: TaskReader,
    page: Paging,
    status: TaskStatus | None = None,
    kind: TaskKind | None = None,
    assignee: str | None = None,
    region_prefix: RegionPrefix = None,
    participant_id: str | None = None,
    due_before: AwareDatetime | None = None,
    due_after: AwareDatetime | None = None,
) -> Page[TaskSummaryRead]:
    return await tasks.list_tasks(
        session,
        principal=principal,
        filters=TaskFilter(
            status=status,
            kind=kind,
            assignee=assignee,
            region_prefix=region_prefix,
            participant_id=participant_id,
            due_before=due_before,
            due_after=due_after,
        ),
        page=page,
    )


@router.get("/tasks/{task_id}", response_model=TaskRead, summary="One task with the survey result in force")
async def get_task(task_id: str, session: Session, settings: SettingsDep, principal: TaskReader) -> TaskRead:
    return await tasks.read_task(session, principal=principal, settings=settings, task_id=task_id)


@router.post(
    "/tasks/{task_id}/assignment", response_model=TaskSummaryRead, summary="Assign a task to a facilitator (admin)"
)
async def assign_task(
    task_id: str, body: AssignmentCommand, session: Session, clock: ClockDep, principal: Assigner
) -> TaskSummaryRead:
    task = await assignment.assign_task(session, principal=principal, clock=clock, task_id=task_id, data=body)
    return views.task_summary_read(task)


@router.post(
    "/tasks/{task_id}/survey",
    status_code=201,
    response_model=TaskRead,
    summary="Submit the survey of a due task (the assigned facilitator, or an admin); corrections need a reason",
)
async def submit_survey(
    task_id: str,
    body: SurveyCreate,
    session: Session,
    clock: ClockDep,
    settings: SettingsDep,
    principal: TaskSubmitter,
    idempotency_key: IdempotencyKey = None,
) -> TaskRead:
    return await surveys.submit_survey_once(
        session,
        principal=principal,
        clock=clock,
        settings=settings,
        task_id=task_id,
        data=body,
        idempotency_key=idempotency_key,
    )


@router.get("/tasks/{task_id}/surveys", response_model=list[SurveyRead], summary="Every survey version of a task")
async def survey_history(
    task_id: str, session: Session, settings: SettingsDep, principal: TaskReader
) -> list[SurveyRead]:
    return await surveys.survey_history(session, principal=principal, settings=settings, task_id=task_id)


# ------------------------------------------------------------------ summary


@router.get(
    "/summary",
    response_model=SummaryRead,
    responses=TABULAR_RESPONSES,
    summary="Completion and results by group (admins and verifiers); JSON, CSV or XLSX",
)
async def read_summary(
    request: Request,
    session: Session,
    settings: SettingsDep,
    principal: SummaryReader,
    group_by: Literal["centre", "business_field", "province", "regency", "training_year"] = "centre",
    region_prefix: RegionPrefix = None,
    due_before: AwareDatetime | None = None,
) -> Any:
    fmt = wanted_format(request)
    answer = await summary.read_summary(
        session,
        principal=principal,
        settings=settings,
        group_by=group_by,
        region_prefix=region_prefix,
        due_before=due_before,
        export=None if fmt == "json" else fmt,
    )
    if fmt == "json":
        return answer
    return tabular_response(
        fmt,
        filename=f"monev-summary-{group_by}",
        columns=summary.EXPORT_COLUMNS,
        rows=[summary.export_row(g) for g in answer.groups],
        min_cell_size=settings.min_cell_size,
    )


# ------------------------------------------------------------------ survey results in bulk (backfill)

# POST /imports/surveys, GET /imports/templates/surveys, GET /imports/{id} and /imports/{id}/errors
import_routes(
    router,
    kinds=survey_imports.KINDS,
    session_type=Session,
    writer=Importer,
    viewer=Importer,
    reference=TemplateReader,
)
