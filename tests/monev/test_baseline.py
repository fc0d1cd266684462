"""The baseline read model (participant.registered / participant.updated) only moves forward (the index
formulas are unit-tested in tests/unit/test_measures.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from pena.contracts import ParticipantUpdated
from services.monev import queries
from tests.monev.support import PADANG_VILLAGE, in_monev, monev, register
from tests.support import Announcement, participants_publisher, publish, status_changed


async def test_older_or_repeated_versions_change_nothing(make_runtime) -> None:
    runtime = await make_runtime([participants_publisher, monev])
    await register(runtime, "p-1", income=1_200_000, household_size=5, version=2)
    await register(runtime, "p-1", income=999, household_size=1, version=1)  # late, older
    await register(runtime, "p-1", income=999, household_size=1, version=2)  # same version again

    async def baseline():
        return await in_monev(runtime, lambda s: queries.baseline(s, "p-1"))

    row = await baseline()
    assert (row.version, row.baseline_monthly_income, row.household_size) == (2, 1_200_000, 5)

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
    await publish(runtime, Announcement("participant.updated", update, "p-1", update.updated_at))
    row = await baseline()
    assert (row.version, row.household_size, row.region_code) == (3, 6, "1371011002")


async def test_erasure_in_the_registry_drops_the_baseline_figures_for_good(make_runtime) -> None:
    runtime = await make_runtime([participants_publisher, monev])
    await register(runtime, "p-9", income=1_500_000, household_size=4, version=1)
    erased = status_changed(
        "p-9", to="erased", version=2, reason_code="erasure_requested", at=datetime(2026, 2, 1, tzinfo=UTC)
    )
    await publish(runtime, erased)
    await register(runtime, "p-9", income=1_500_000, household_size=4, version=1)  # a late copy of the old facts
    row = await in_monev(runtime, lambda s: queries.baseline(s, "p-9"))
    assert row is not None
    assert (row.version, row.baseline_monthly_income, row.household_size) == (2, None, None)
    assert row.region_code == PADANG_VILLAGE  # the village stays for statistics
