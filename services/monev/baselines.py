"""The baseline read model: the registry's facts about a participant (village, household size, baseline
income) that the Monev measures compare against. A row only moves forward to a newer version."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.clock import Clock
from services.monev import queries


async def apply_baseline(
    session: AsyncSession,
    *,
    participant_id: str,
    version: int,
    region_code: str | None,
    household_size: int | None,
    baseline_monthly_income: int | None,
    clock: Clock,
    household_id: str | None = None,
) -> None:
    """Moves a row forward only: a version not newer than the stored one changes nothing."""
    now = clock.now()
    await queries.upsert_baseline(
        session,
        {
            "participant_id": participant_id,
            "version": version,
            "updated_at": now,
            "region_code": region_code,
            "household_size": household_size,
            "baseline_monthly_income": baseline_monthly_income,
            "household_id": household_id,
        },
    )


async def forget_baseline(session: AsyncSession, *, participant_id: str, version: int, clock: Clock) -> None:
    """Erasure in the registry: drop the baseline figures held here (the village code stays for the
    programme's statistics). Stored with the erasure's version, so a late older event cannot restore them."""
    now = clock.now()
    erased = {"household_size": None, "baseline_monthly_income": None}
    await queries.upsert_baseline(
        session, {"participant_id": participant_id, "version": version, "updated_at": now} | erased
    )
