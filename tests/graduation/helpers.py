"""Test helpers for the graduation service: a small "monev" publisher that emits MonevCompleted
through its own outbox (like tests/kernel/probe.py), and readers for the graduation outbox."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import MetaData, select

from pena.contracts.monev import MonevCompleted, MonevIndicators, MonevMeasures
from pena.definition import ServiceDefinition
from pena.outbox import emit
from pena.runtime import Runtime
from pena.tables import audit_log, outbox

# The contract's owning service is "monev": its outbox and topic carry monev.completed.
monev_publisher = ServiceDefinition(name="monev", metadata=MetaData())
# Likewise a stand-in "participants" publisher for the participant.* read model.
participants_publisher = ServiceDefinition(name="participants", metadata=MetaData())

PADANG_VILLAGE = "1371011001"  # Kota Padang (13.71), a village in it
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


async def emit_monev(runtime: Runtime, result: MonevCompleted) -> None:
    async with runtime.service("monev").db.transaction() as session:
        await emit(session, "monev.completed", result, subject=result.participant_id, time=runtime.clock.now())


async def publish_monev(runtime: Runtime, result: MonevCompleted) -> None:
    """Writes the event into the monev outbox and relays it (in-process bus runs graduation's handler)."""
    await emit_monev(runtime, result)
    relay = runtime.service("monev").relay
    assert relay is not None
    await relay.drain()


async def graduation_events(runtime: Runtime, name: str) -> list[dict[str, Any]]:
    """Payloads of the graduation outbox rows of one event name, oldest first."""
    async with runtime.service("graduation").db.transaction() as session:
        rows = (
            await session.execute(select(outbox.c.envelope).where(outbox.c.event_name == name).order_by(outbox.c.id))
        ).scalars()
        return [r["data"] for r in rows]


async def audit_actions(runtime: Runtime) -> list[str]:
    async with runtime.service("graduation").db.transaction() as session:
        return list((await session.execute(select(audit_log.c.action).order_by(audit_log.c.id))).scalars())
