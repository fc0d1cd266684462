"""Who reaches which follow-up task, and reading tasks (one, or a page of them).

Reach is the kernel's (`pena.access`): a facilitator reaches the tasks assigned to them, a verifier,
approver or integrator the tasks of their region (or all, with national reach), an admin all. A task
out of reach is answered exactly like a missing one (404), a list holds only reachable tasks."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, covers_assigned, list_region_prefix, reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import not_found
from pena.settings import Settings
from services.monev import queries, views
from services.monev.models import MonevTask
from services.monev.schemas import TaskFilter, TaskRead, TaskSummaryRead


class Placed(Protocol):
    """What reach is decided on: a task, or the few columns of one read for an import."""

    @property
    def assignee(self) -> str | None: ...

    @property
    def region_code(self) -> str: ...


def reaches(reach: Reach, task: Placed) -> bool:
    return covers_assigned(reach, assignee=task.assignee, region_code=task.region_code)


async def load_task(
    session: AsyncSession, *, principal: Principal, task_id: str, for_update: bool = False
) -> MonevTask:
    """The task if the caller reaches it; a task out of reach is reported as missing (no leak)."""
    task = await queries.task_by_id(session, task_id, for_update=for_update)
    if task is None or not reaches(reach_of(principal), task):
        raise not_found("monev task", task_id)
    return task


async def read_task(session: AsyncSession, *, principal: Principal, settings: Settings, task_id: str) -> TaskRead:
    """One task with the survey version in force (its notes only for a caller who may read them)."""
    task = await load_task(session, principal=principal, task_id=task_id)
    survey = (
        await queries.survey_version(session, task.id, task.submission_version) if task.submission_version else None
    )
    with_notes = views.may_read_notes(principal)
    await record_audit(
        session,
        actor=principal,
        action="monev.task.read",
        subject_type="monev_task",
        subject_id=task.id,
        purpose="monev follow-up",
        details={
            "participant_id": task.participant_id,
            "with_result": survey is not None,
            "notes_shown": with_notes and survey is not None and survey.notes_encrypted is not None,
        },
    )
    return views.task_read(task, survey, settings, with_notes=with_notes)


def _list_scope(reach: Reach, requested_region: str | None) -> tuple[str | None, str | None] | None:
    """(assignee, region prefix) a list is limited to, or None when the caller reaches no task there."""
    if reach.kind == "assigned":
        return reach.subject, None  # own assignments, wherever they are (the filter still narrows)
    prefix = list_region_prefix(reach, requested_region)
    if prefix is None:
        return None
    return None, prefix or None


async def list_tasks(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: TaskFilter,
    page: PageRequest,
) -> Page[TaskSummaryRead]:
    after = read_cursor(page, ("due_at", datetime), ("id", str))
    scope = _list_scope(reach_of(principal), filters.region_prefix)
    rows: list[MonevTask] = []
    if scope is not None:
        rows = await queries.list_tasks(
            session, filters=filters, scope_assignee=scope[0], scope_region=scope[1], after=after, limit=page.limit
        )
    returned = rows[: page.limit]
    await record_audit(
        session,
        actor=principal,
        action="monev.task.listed",
        subject_type="monev_task",
        subject_id=None,
        purpose="monev follow-up",
        details={"returned": len(returned), "task_ids": [t.id for t in returned]},
    )
    return keyset_page(
        rows, page, key=lambda t: {"due_at": t.due_at.isoformat(), "id": t.id}, item=views.task_summary_read
    )
