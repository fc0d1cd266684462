"""Consumed events and scheduled jobs of the monev service, as plain functions.

training.completed schedules follow-up tasks; participant.registered / participant.updated feed the
baseline read model (a row only moves forward to a newer version, so late or repeated events change
nothing). The due and overdue jobs run in the scheduler's claiming transaction."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock
from pena.consumer import Delivery
from pena.contracts import ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.scheduler import Job
from services.monev import baselines, erasure, scheduling
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
    facts: ParticipantRegistered | ParticipantUpdated = delivery.payload
    await baselines.apply_baseline(
        session,
        participant_id=facts.participant_id,
        version=facts.version,
        region_code=facts.region_code,
        household_size=facts.household_size,
        baseline_monthly_income=facts.baseline_monthly_income,
        household_id=facts.household_id,
        clock=delivery.clock,
    )


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


async def due_job(session: AsyncSession, job: Job, clock: Clock) -> None:
    await scheduling.announce_due(
        session,
        task_id=str(job.payload["task_id"]),
        grace=str(job.payload.get("grace") or "P30D"),
        timezone=str(job.payload.get("timezone") or "Asia/Jakarta"),
        clock=clock,
    )


async def overdue_job(session: AsyncSession, job: Job, clock: Clock) -> None:
    await scheduling.announce_overdue(session, task_id=str(job.payload["task_id"]), clock=clock)


HANDLERS = {
    "training.completed": on_training_completed,
    "participant.registered": on_participant_facts,
    "participant.updated": on_participant_facts,
    "participant.status_changed": on_participant_status_changed,
}
BATCH_HANDLERS = {"training.completed": on_trainings_completed}
JOBS = {scheduling.DUE_JOB: due_job, scheduling.OVERDUE_JOB: overdue_job}
