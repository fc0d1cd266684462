"""Thin routes of the monev service: parse, authorise, call a use case, shape the answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal, require
from pena.http.deps import ClockDep, SettingsDep, session_dependency
from pena.idempotency import IdempotencyKey, idempotent
from pena.pagination import Page, Paging
from pena.settings import Settings
from services.monev import queries, service
from services.monev.measures import FORMULA_VERSION
from services.monev.models import MonevSurvey, MonevTask
from services.monev.schemas import (
    AssignmentIn,
    FacilitatorRegionIn,
    FacilitatorRegionRead,
    QuartileSummary,
    Summary,
    SummaryGroup,
    SurveyIn,
    SurveyRead,
    TaskRead,
    TaskStatus,
    TaskSummary,
)

Session = Annotated[AsyncSession, session_dependency("monev")]
Reader = Annotated[Principal, Depends(require("monev:read"))]
Assigner = Annotated[Principal, Depends(require("monev:assign"))]
Submitter = Annotated[Principal, Depends(require("monev:submit"))]
RegionPrefix = Annotated[str | None, Query(pattern=r"^\d{2,10}$", description="Kemendagri code prefix")]

router = APIRouter(prefix="/v1/monev", tags=["monev"])


def _survey_read(survey: MonevSurvey, settings: Settings) -> SurveyRead:
    return SurveyRead(
        id=survey.id,
        task_id=survey.task_id,
        version=survey.version,
        visit_date=survey.visit_date,
        respondent=survey.respondent,
        indicators=service.indicators_of(survey),  # type: ignore[arg-type]
        measures=service.measures_of(survey),  # type: ignore[arg-type]
        notes=service.decrypt_notes(survey, settings),
        correction_reason=survey.correction_reason,
        submitted_by=survey.submitted_by,
        submitted_at=survey.submitted_at,
    )


def _task_read(task: MonevTask, survey: MonevSurvey | None, settings: Settings) -> TaskRead:
    return TaskRead(
        **service.task_summary(task).model_dump(),
        announced_at=task.announced_at,
        created_at=task.created_at,
        updated_at=task.updated_at,
        result=_survey_read(survey, settings) if survey else None,
    )


# ------------------------------------------------------------------ facilitators


@router.post(
    "/facilitators",
    status_code=201,
    response_model=FacilitatorRegionRead,
    summary="A facilitator covers a region prefix: new tasks there are assigned to them (admin)",
)
async def add_facilitator_region(
    body: FacilitatorRegionIn,
    session: Session,
    clock: ClockDep,
    principal: Assigner,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        row = await service.add_facilitator_region(session, principal=principal, clock=clock, data=body)
        return 201, FacilitatorRegionRead.model_validate(row, from_attributes=True).model_dump(mode="json")

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
    return await service.list_facilitator_regions(session, subject=subject, page=page)


@router.delete("/facilitators/{coverage_id}", status_code=204, summary="Remove a facilitator's region coverage")
async def remove_facilitator_region(coverage_id: str, session: Session, principal: Assigner) -> Response:
    await service.remove_facilitator_region(session, principal=principal, coverage_id=coverage_id)
    return Response(status_code=204)


# ------------------------------------------------------------------ tasks


@router.get(
    "/tasks",
    response_model=Page[TaskSummary],
    summary="Follow-up tasks by due time (a facilitator sees only their own)",
)
async def list_tasks(
    session: Session,
    principal: Reader,
    page: Paging,
    status: TaskStatus | None = None,
    assignee: str | None = None,
    region_prefix: RegionPrefix = None,
    participant_id: str | None = None,
    due_before: AwareDatetime | None = None,
    due_after: AwareDatetime | None = None,
) -> Page[TaskSummary]:
    return await service.list_tasks(
        session,
        principal=principal,
        filters=queries.TaskFilter(
            status=status,
            assignee=assignee,
            region_prefix=region_prefix,
            participant_id=participant_id,
            due_before=due_before,
            due_after=due_after,
        ),
        page=page,
    )


@router.get("/tasks/{task_id}", response_model=TaskRead, summary="One task with the survey result in force")
async def get_task(task_id: str, session: Session, settings: SettingsDep, principal: Reader) -> TaskRead:
    task, survey = await service.get_task(session, principal=principal, task_id=task_id)
    return _task_read(task, survey, settings)


@router.post(
    "/tasks/{task_id}/assignment", response_model=TaskSummary, summary="Assign a task to a facilitator (admin)"
)
async def assign_task(
    task_id: str, body: AssignmentIn, session: Session, clock: ClockDep, principal: Assigner
) -> TaskSummary:
    return service.task_summary(
        await service.assign_task(session, principal=principal, clock=clock, task_id=task_id, data=body)
    )


@router.post(
    "/tasks/{task_id}/survey",
    status_code=201,
    response_model=TaskRead,
    summary="Submit the survey of a due task (the assigned facilitator, or an admin); corrections need a reason",
)
async def submit_survey(
    task_id: str,
    body: SurveyIn,
    session: Session,
    clock: ClockDep,
    settings: SettingsDep,
    principal: Submitter,
    idempotency_key: IdempotencyKey = None,
) -> JSONResponse:
    async def effect() -> tuple[int, dict[str, Any]]:
        task, survey = await service.submit_survey(
            session, principal=principal, clock=clock, settings=settings, task_id=task_id, data=body
        )
        return 201, _task_read(task, survey, settings).model_dump(mode="json")

    fingerprint = {"task_id": task_id, **body.model_dump(mode="json")}
    return await idempotent(
        session, principal=principal, key=idempotency_key, scope="monev.survey", body=fingerprint, effect=effect
    )


@router.get("/tasks/{task_id}/surveys", response_model=list[SurveyRead], summary="Every survey version of a task")
async def survey_history(task_id: str, session: Session, settings: SettingsDep, principal: Reader) -> list[SurveyRead]:
    surveys = await service.survey_history(session, principal=principal, task_id=task_id)
    return [_survey_read(s, settings) for s in surveys]


# ------------------------------------------------------------------ summary


@router.get("/summary", response_model=Summary, summary="Completion and results by group (admins and verifiers)")
async def summary(
    session: Session,
    settings: SettingsDep,
    principal: Reader,
    group_by: Literal["centre", "business_field", "province", "regency", "training_year"] = "centre",
    region_prefix: RegionPrefix = None,
    due_before: AwareDatetime | None = None,
) -> Summary:
    rows = await service.summary(
        session,
        principal=principal,
        settings=settings,
        group_by=group_by,
        region_prefix=region_prefix,
        due_before=due_before,
    )
    return Summary(group_by=group_by, formula_version=FORMULA_VERSION, groups=[_group(r) for r in rows])


def _group(row: dict[str, Any]) -> SummaryGroup:
    quartiles = row["income_quartiles"] or [None, None, None]
    due = int(row["tasks_due"])
    done = int(row["tasks_done"])

    def rounded(value: Any) -> float | None:
        return None if value is None else round(float(value), 4)

    return SummaryGroup(
        group=None if row["group_key"] is None else str(row["group_key"]),
        tasks_total=int(row["tasks_total"]),
        tasks_due=due,
        tasks_done=done,
        tasks_overdue=int(row["tasks_overdue"]),
        completion_rate=round(done / due, 4) if due else None,
        income_change=QuartileSummary(q1=quartiles[0], median=quartiles[1], q3=quartiles[2]),
        business_active_share=rounded(row["business_active_share"]),
        welfare_index_mean=rounded(row["welfare_index_mean"]),
        independence_index_mean=rounded(row["independence_index_mean"]),
    )
