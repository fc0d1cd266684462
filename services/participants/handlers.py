"""Consumed events. graduation.decided: a graduation sets the status graduated; an appeal that
reverses one sets it back to active. Either way participant.status_changed goes out.

Redelivery is a no-op (the kernel's inbox). A decision older than the newest one applied is ignored
(out-of-order arrival); a decision for a participant not (yet) here is retried, then dead-lettered."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.consumer import Delivery
from pena.contracts import GraduationDecided
from pena.import_runs import IMPORT_JOB, chunk_job
from services.participants import imports, status
from services.participants.regions import load_regions_if_empty


async def on_graduation_decided(session: AsyncSession, delivery: Delivery) -> None:
    decision: GraduationDecided = delivery.payload
    await status.apply_graduation_decision(session, decision=decision, settings=delivery.settings, clock=delivery.clock)


HANDLERS = {"graduation.decided": on_graduation_decided}
JOBS = {IMPORT_JOB: chunk_job(imports.KINDS)}  # one chunk of a bulk import per job (pena.import_runs)
STARTUP = [load_regions_if_empty]  # the Kemendagri region codes, loaded into an empty database
