"""Who sees which follow-up task, and reading tasks (one, or a page of them)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import not_found
from services.monev import queries, views
from services.monev.models import MonevSurvey, MonevTask
from services.monev.schemas import TaskFilter, TaskSummaryRead


def task_scope(principal: Principal) -> tuple[str | None, str | None]:
    """(assignee, region prefix) a caller is limited to. Admins see everything; a facilitator only the
    tasks assigned to them; verifiers and other readers everything, or their unit's region when the
    token carries one."""
    if principal.is_admin:
        return None, None
    if principal.has_role("facilitator"):
        return principal.subject, None
    return None, principal.unit or None


def _visible(principal: Principal, task: MonevTask) -> bool:
    assignee, region = task_scope(principal)
    if assignee is not None and task.assignee != assignee:
        return False
    return region is None or task.region_code.startswith(region)


async def load_task(
    session: AsyncSession, *, principal: Principal, task_id: str, for_update: bool = False
) -> MonevTask:
    """The task if the caller may see it; someone else's task is reported as missing (no leak)."""
    task = await queries.task_by_id(session, task_id, for_update=for_update)
    if task is None or not _visible(principal, task):
        raise not_found("monev task", task_id)
    return task


async def get_task(
    session: AsyncSession, *, principal: Principal, task_id: str
) -> tuple[MonevTask, MonevSurvey | None]:
    task = await load_task(session, principal=principal, task_id=task_id)
    survey = (
        await queries.survey_version(session, task.id, task.submission_version) if task.submission_version else None
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.task.read",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={"participant_id": task.participant_id, "with_result": survey is not None},
    )
    return task, survey


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: TaskFilter,
    page: PageRequest,
) -> Page[TaskSummaryRead]:
    after = read_cursor(page, ("due_at", datetime), ("id", str))
    scope_assignee, scope_region = task_scope(principal)
    rows = await queries.list_tasks(
        session,
        filters=filters,
        scope_assignee=scope_assignee,
        scope_region=scope_region,
        after=after,
        limit=page.limit,
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.task.listed",
        subject_type="monev_task",
        subject_id=None,
        purpose="monev follow-up",
        details={"returned": min(len(rows), page.limit)},
    )
    return keyset_page(
        rows, page, key=lambda t: {"due_at": t.due_at.isoformat(), "id": t.id}, item=views.task_summary_read
    )
