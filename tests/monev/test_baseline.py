"""The baseline read model (participant.registered / participant.updated) only moves forward, and the
index formulas behave at their edges."""

from __future__ import annotations

from datetime import UTC, datetime

from pena.contracts import ParticipantUpdated
from pena.contracts.monev import MonevIndicators
from pena.outbox import emit
from services.monev import measures, queries
from tests.monev.support import PADANG_VILLAGE, in_monev, monev, participants_stub, register


async def test_older_or_repeated_versions_change_nothing(make_runtime) -> None:
    runtime = await make_runtime([participants_stub, monev])
    await register(runtime, "p-1", income=1_200_000, household_size=5, version=2)
    await register(runtime, "p-1", income=999, household_size=1, version=1)  # late, older
    await register(runtime, "p-1", income=999, household_size=1, version=2)  # same version again

    async def baseline():
        return await in_monev(runtime, lambda s: queries.baseline(s, "p-1"))

    row = await baseline()
    assert (row.version, row.baseline_monthly_income, row.household_size) == (2, 1_200_000, 5)

    registry = runtime.service("participants")
    async with registry.db.transaction() as session:
        update = ParticipantUpdated(
            participant_id="p-1",
            version=3,
            changed_fields=["household_size"],
            updated_at=datetime(2026, 1, 2, tzinfo=UTC),
            region_code="1371011002",
            household_size=6,
            baseline_monthly_income=1_200_000,
            status="active",
        )
        await emit(session, "participant.updated", update, subject="p-1", time=update.updated_at)
    await registry.relay.drain()
    row = await baseline()
    assert (row.version, row.household_size, row.region_code) == (3, 6, "1371011002")


async def test_erasure_in_the_registry_drops_the_baseline_figures_for_good(make_runtime) -> None:
    from pena.contracts import ParticipantStatusChanged

    runtime = await make_runtime([participants_stub, monev])
    await register(runtime, "p-9", income=1_500_000, household_size=4, version=1)
    registry = runtime.service("participants")
    async with registry.db.transaction() as session:
        erased = ParticipantStatusChanged(
            participant_id="p-9",
            version=2,
            from_status="active",
            to_status="erased",
            reason_code="erasure_requested",
            changed_at=datetime(2026, 2, 1, tzinfo=UTC),
        )
        await emit(session, "participant.status_changed", erased, subject="p-9", time=erased.changed_at)
    await registry.relay.drain()
    await register(runtime, "p-9", income=1_500_000, household_size=4, version=1)  # a late copy of the old facts
    row = await in_monev(runtime, lambda s: queries.baseline(s, "p-9"))
    assert (row.version, row.baseline_monthly_income, row.household_size) == (2, None, None)
    assert row.region_code == PADANG_VILLAGE  # the village stays for statistics


def _indicators(**overrides: object) -> MonevIndicators:
    values = {
        "business_status": "paused",
        "monthly_revenue": 0,
        "monthly_household_income": 0,
        "household_size": 2,
        "workers_employed": 0,
        "business_assets": 0,
        "savings": 0,
        "assistance_still_received": ["PKH"],
        "welfare_self_assessment": 1,
    } | overrides
    return MonevIndicators.model_validate(values)


def test_growth_score_is_capped_and_handles_a_zero_baseline() -> None:
    assert measures.growth_score(300, 100) == 1.0  # tripled: capped
    assert measures.growth_score(100, 100) == 0.5  # unchanged
    assert measures.growth_score(0, 100) == 0.0
    assert measures.growth_score(50, 0) == 1.0
    assert measures.growth_score(0, 0) == 0.5
    assert measures.growth_score(50, None) is None


def test_lowest_case_indices() -> None:
    result = measures.compute(_indicators(), measures.Baseline(monthly_income=400_000, household_size=2))
    assert result.income_change == -400_000
    assert result.income_per_member == 0 and result.income_per_member_change == -200_000
    assert result.welfare_index == 0.0
    assert result.independence_index == 0.125  # only the paused business: 0.25 * 0.5
