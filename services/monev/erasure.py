"""A participant leaves: exit from the programme or erasure (UU PDP), announced by the registry's
participant.status_changed.

On `exited` or `erased` the participant's open follow-up tasks (scheduled, due, overdue) are cancelled
with the reason (`participant_exited` / `participant_erased`): their due and overdue jobs are cancelled
too, so no monev.due or monev.overdue follows, and a survey for them is refused (409 task_cancelled).
On `erased` every survey version of the participant's tasks loses its figures, measures and notes
(queries.ERASED_SURVEY_COLUMNS), and the baseline read model its figures; what statistics count in
aggregate stays (region, dates, business status and field, assistance codes, exit statement,
household id). Both steps only touch what is not done yet, so a redelivered event changes nothing."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audits
from pena.clock import Clock
from pena.outbox import forget_published
from services.monev import baselines, queries
from services.monev.scheduling import cancel_tasks

CANCELLING = {"exited": "participant_exited", "erased": "participant_erased"}


async def participant_left(
    session: AsyncSession, *, participant_id: str, to_status: str, version: int, clock: Clock
) -> None:
    if to_status not in CANCELLING:
        return
    now = clock.now()
    await cancel_open_tasks(session, participant_id=participant_id, reason=CANCELLING[to_status], clock=clock)
    if to_status == "erased":
        await baselines.forget_baseline(session, participant_id=participant_id, version=version, clock=clock)
        erased = await queries.erase_surveys(session, participant_id, now=now)
        await forget_published(session, participant_id)  # published monev.completed events with the figures
        if erased:
            await record_audits(
                session,
                [
                    audit_row(
                        actor=None,
                        action="monev.survey.erased",
                        subject_type="participant",
                        subject_id=participant_id,
                        details={"survey_versions": erased},
                    )
                ],
            )


async def cancel_open_tasks(session: AsyncSession, *, participant_id: str, reason: str, clock: Clock) -> list[str]:
    """Cancels the participant's open tasks and their pending due/overdue jobs; returns their ids."""
    open_ids = await queries.open_task_ids(session, participant_id)
    return await cancel_tasks(
        session, open_ids, reason=reason, details={"participant_id": participant_id}, now=clock.now()
    )
