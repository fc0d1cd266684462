"""Consumed events and scheduled jobs of the monev service, as plain functions.

training.completed schedules follow-up tasks; graduation.decided schedules mentoring tasks or, when
reversed, cancels them (mentoring.py); participant.registered / participant.updated feed the baseline
read model (a row only moves forward to a newer version, so late or repeated events change nothing).
The due and overdue jobs run in the scheduler's claiming transaction."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock
from pena.consumer import Delivery
from pena.contracts import GraduationDecided, ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.import_runs import IMPORT_JOB, chunk_job
from pena.scheduler import Job
from services.monev import baselines, erasure, mentoring, scheduling, survey_imports
from services.monev.settings import get_monev_settings


async def on_training_completed(session: AsyncSession, delivery: Delivery) -> None:
    await on_trainings_completed(session, [delivery])


async def on_trainings_completed(session: AsyncSession, deliveries: list[Delivery]) -> None:
    """The set-based form the Kafka consumer uses for a fetched run of completions."""
    first = deliveries[0]
    await scheduling.schedule_follow_ups(
        session,
        completions=[(d.payload, d.context) for d in deliveries],
        settings=first.settings,
        monev_settings=get_monev_settings(),
        clock=first.clock,
    )


async def on_participant_facts(session: AsyncSession, delivery: Delivery) -> None:
    await on_participants_facts(session, [delivery])


async def on_participants_facts(session: AsyncSession, deliveries: list[Delivery]) -> None:
    """The set-based form the Kafka consumer uses for a fetched run of registered/updated events."""
    await baselines.apply_baselines(session, [_baseline_row(d) for d in deliveries])


def _baseline_row(delivery: Delivery) -> dict[str, Any]:
    facts: ParticipantRegistered | ParticipantUpdated = delivery.payload
    return {
        "participant_id": facts.participant_id,
        "version": facts.version,
        "updated_at": delivery.clock.now(),
        "region_code": facts.region_code,
        "household_size": facts.household_size,
        "baseline_monthly_income": facts.baseline_monthly_income,
        "household_id": facts.household_id,
    }


async def on_participant_status_changed(session: AsyncSession, delivery: Delivery) -> None:
    change: ParticipantStatusChanged = delivery.payload
    # exit or erasure: open tasks cancelled; erasure also blanks the survey and baseline figures
    await erasure.participant_left(
        session,
        participant_id=change.participant_id,
        to_status=change.to_status,
        version=change.version,
        clock=delivery.clock,
    )


async def on_graduation_decided(session: AsyncSession, delivery: Delivery) -> None:
    """A graduation schedules mentoring visits; a reversal on appeal cancels those not done yet."""
    decided: GraduationDecided = delivery.payload
    if decided.outcome == "reversed" and decided.supersedes_decision_id:
        await mentoring.cancel_mentoring(session, decision_id=decided.supersedes_decision_id, clock=delivery.clock)
    elif decided.graduated:
        await mentoring.schedule_mentoring(
            session,
            decision=decided,
            in_context=delivery.context,
            settings=delivery.settings,
            monev_settings=get_monev_settings(),
            clock=delivery.clock,
        )


async def due_job(session: AsyncSession, job: Job, clock: Clock) -> None:
    await due_jobs(session, [job], clock)


async def due_jobs(session: AsyncSession, jobs: list[Job], clock: Clock) -> None:
    """The set-based form the scheduler uses for the claimed monev.due jobs of a pass. The grace
    period and zone travel with each job (handlers receive no settings)."""
    await scheduling.announce_due(
        session,
        jobs=[
            (
                str(job.payload["task_id"]),
                str(job.payload.get("grace") or "P30D"),
                str(job.payload.get("timezone") or "Asia/Jakarta"),
            )
            for job in jobs
        ],
        clock=clock,
    )


async def overdue_job(session: AsyncSession, job: Job, clock: Clock) -> None:
    await overdue_jobs(session, [job], clock)


async def overdue_jobs(session: AsyncSession, jobs: list[Job], clock: Clock) -> None:
    """The set-based form the scheduler uses for the claimed monev.overdue jobs of a pass."""
    await scheduling.announce_overdue(session, task_ids=[str(job.payload["task_id"]) for job in jobs], clock=clock)


HANDLERS = {
    "training.completed": on_training_completed,
    "participant.registered": on_participant_facts,
    "participant.updated": on_participant_facts,
    "participant.status_changed": on_participant_status_changed,
    "graduation.decided": on_graduation_decided,
}
BATCH_HANDLERS = {
    "training.completed": on_trainings_completed,
    "participant.registered": on_participants_facts,
    "participant.updated": on_participants_facts,
}
JOBS = {
    scheduling.DUE_JOB: due_job,
    scheduling.OVERDUE_JOB: overdue_job,
    IMPORT_JOB: chunk_job(survey_imports.KINDS),  # one chunk of a survey import per job (pena.import_runs)
}
BATCH_JOBS = {scheduling.DUE_JOB: due_jobs, scheduling.OVERDUE_JOB: overdue_jobs}
