"""The baseline read model: the registry's facts about a participant (village, household size, baseline
income) that the Monev measures compare against. A row only moves forward to a newer version."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock
from services.monev import queries


async def apply_baselines(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The registry's facts of a batch of events in delivery order, set-based: each row holds the
    participant id, version, updated_at and the baseline columns. A row moves forward only: a version
    not newer than the stored one changes nothing."""
    await queries.upsert_baselines(session, rows)


async def forget_baseline(session: AsyncSession, *, participant_id: str, version: int, clock: Clock) -> None:
    """Erasure in the registry: drop the baseline figures held here (the village code stays for the
    programme's statistics). Stored with the erasure's version, so a late older event cannot restore them."""
    now = clock.now()
    erased = {"household_size": None, "baseline_monthly_income": None}
    await queries.upsert_baseline(
        session, {"participant_id": participant_id, "version": version, "updated_at": now} | erased
    )
