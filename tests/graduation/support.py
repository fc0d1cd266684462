"""Test support for the graduation service: Monev results as the stand-in monev service announces them.
Stand-in publishers and outbox/audit readers are shared: tests/support.py."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

from pena.contracts.monev import MonevCompleted, MonevIndicators, MonevMeasures
from pena.runtime import Runtime
from tests.support import PADANG_VILLAGE, Announcement, publish

SOLOK_VILLAGE = "1372011001"  # Kota Solok (13.72): no UMK loaded in the tests


def monev_result(
    participant_id: str,
    *,
    income: int,
    household_size: int = 4,
    region: str | None = PADANG_VILLAGE,
    visit: date = date(2026, 1, 3),
    task_id: str | None = None,
    submission_version: int = 1,
    business_status: str = "active",
    voluntary: bool = True,
    centre_id: str = "bbppks-padang",
    business_field: str = "kuliner",
) -> MonevCompleted:
    return MonevCompleted(
        task_id=task_id or f"task-{uuid.uuid4().hex[:8]}",
        participant_id=participant_id,
        batch_id="batch-1",
        centre_id=centre_id,
        business_field=business_field,
        region_code=region,
        wave="P3M",
        visit_date=visit,
        submission_version=submission_version,
        indicators=MonevIndicators(
            business_status=business_status,  # type: ignore[arg-type]
            business_field=business_field,
            monthly_revenue=income,
            monthly_household_income=income,
            household_size=household_size,
            workers_employed=0,
            business_assets=1_000_000,
            savings=100_000,
            welfare_self_assessment=4,
            voluntary_exit_statement=voluntary,
        ),
        measures=MonevMeasures(
            formula_version="test-1",
            income_per_member=income // household_size,
            welfare_index=0.6,
            independence_index=0.6,
        ),
        completed_at=datetime.combine(visit, datetime.min.time(), tzinfo=UTC),
    )


async def publish_monev(runtime: Runtime, result: MonevCompleted, *, drain: bool = True) -> None:
    """Writes monev.completed into the stand-in monev outbox at the runtime's clock time; with `drain` the
    relay publishes it at once (the in-process bus runs graduation's handler)."""
    now = runtime.clock.now()
    await publish(runtime, Announcement("monev.completed", result, result.participant_id, now), drain=drain)
