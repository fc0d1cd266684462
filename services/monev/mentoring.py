"""Mentoring after graduation (issue 14 item 5) through the follow-up machinery: `graduation.decided`
with `graduated=true` schedules one task of kind `mentoring` per offset the event carries
(`mentoring_follow_ups`, graduation's policy data, counted from the decision's effective date on the
business calendar). The tasks are ordinary tasks: assigned by region, the same due and overdue jobs
and events, the same survey endpoint, `monev.completed` with `kind` and `decision_id`. A reversal on
appeal cancels the decision's mentoring tasks not yet done. Use cases never commit."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock, start_of_business_day
from pena.consumer import RetryLater
from pena.contracts.graduation import GraduationDecided
from pena.durations import add_duration, parse_duration
from pena.ids import new_id
from pena.settings import Settings
from services.monev import queries
from services.monev.scheduling import (
    MENTORING,
    RegionAssigner,
    cancel_tasks,
    create_tasks,
)
from services.monev.settings import MonevSettings

REVERSED = "graduation_reversed"  # the cancel_reason of a reversed graduation's mentoring tasks


async def schedule_mentoring(
    session: AsyncSession,
    *,
    decision: GraduationDecided,
    in_context: Callable[[], AbstractContextManager[None]],
    settings: Settings,
    monev_settings: MonevSettings,
    clock: Clock,
) -> list[str]:
    """One mentoring task per offset of a graduation; a redelivered or re-announced decision meets the
    unique (decision, wave) index and changes nothing. Returns the ids of the tasks created."""
    if not decision.graduated or decision.effective_date is None or not decision.mentoring_follow_ups:
        return []
    for offset in decision.mentoring_follow_ups:
        parse_duration(offset)  # a malformed offset fails loudly (retried, then dead-lettered)
    # the follow-up the family graduated from: the mentoring visits belong to the same training
    origin = await queries.latest_follow_up_task(session, decision.participant_id)
    if origin is None:
        raise RetryLater("no follow-up task of this participant in monev yet")
    known = await queries.baseline_regions(session, {decision.participant_id})
    region_code = known.get(decision.participant_id) or origin.region_code
    assigner = RegionAssigner()
    await assigner.load(session, {region_code})
    start = start_of_business_day(decision.effective_date, settings.business_timezone)
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for offset in decision.mentoring_follow_ups:
        assignee = assigner.pick(region_code)
        rows.append(
            {
                "id": new_id(),
                "participant_id": decision.participant_id,
                "batch_id": origin.batch_id,
                "centre_id": origin.centre_id,
                "business_field": origin.business_field,
                "region_code": region_code,
                "wave": offset,
                "kind": MENTORING,
                "decision_id": decision.decision_id,
                "training_completed_at": origin.training_completed_at,
                "due_at": add_duration(start, offset),
                "assignee": assignee,
            }
        )
    created = await create_tasks(
        session, [(row, in_context) for row in rows], settings=settings, monev_settings=monev_settings, now=now
    )
    return [row["id"] for row in rows if row["id"] in created]


async def cancel_mentoring(session: AsyncSession, *, decision_id: str, clock: Clock) -> list[str]:
    """The mentoring tasks of a reversed decision that are not done yet are cancelled (reason
    `graduation_reversed`, with their due and overdue jobs); done visits stay. Returns the ids."""
    open_ids = await queries.open_mentoring_task_ids(session, decision_id)
    return await cancel_tasks(session, open_ids, reason=REVERSED, details={"decision_id": decision_id}, now=clock.now())
