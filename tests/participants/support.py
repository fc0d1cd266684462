"""Shared helpers for the participants tests: sample identities (real region codes, consistent NIKs),
a stand-in graduation publisher, and readers of the outbox."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import MetaData, select

from pena.contracts import GraduationDecided
from pena.definition import ServiceDefinition
from pena.outbox import emit
from pena.runtime import Runtime
from pena.tables import outbox

# Woman born 12 May 1990, first registered in 13.71.01 (Bungus Teluk Kabung, Kota Padang): day 12 + 40 = 52
WOMAN_NIK = "1371015205900001"
# Man born 3 January 1985, same district
MAN_NIK = "1371010301850002"
KK = "1371012001150003"  # registered 20 January 2015

# a publisher named like the graduation service, so its outbox feeds the graduation topic
graduation_stub = ServiceDefinition(name="graduation", metadata=MetaData())


CONSENT = {"purpose": "PENA programme participation and follow-up", "given_on": "2026-10-01", "recorded_by": "fac-1"}


def woman(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nik": WOMAN_NIK,
        "kk_number": KK,
        "full_name": "Siti Rahmawati",
        "birth_date": "1990-05-12",
        "sex": "F",
        "region_code": "1371011001",
        "business_field": "fashion_menjahit",
        "assistance_programmes": ["PKH"],
        "dtsen_decile": 1,
        "household_size": 4,
        "baseline_monthly_income": 900_000,
        "address": "Jl. Contoh No. 1, Padang",
        "consent": CONSENT,
    }
    body.update(overrides)
    return body


def man(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nik": MAN_NIK,
        "kk_number": KK,
        "full_name": "Budi Santoso",
        "birth_date": "1985-01-03",
        "sex": "M",
        "region_code": "1371011001",
        "business_field": "kuliner",
        "assistance_programmes": ["PKH", "BPNT"],
        "dtsen_decile": 2,
        "consent": CONSENT,
    }
    body.update(overrides)
    return body


async def decide_graduation(
    runtime: Runtime, participant_id: str, *, graduated: bool, outcome: str, at: datetime | None = None
) -> None:
    """Writes graduation.decided into the stub's outbox and relays it (in-process: runs the handler)."""
    when = at or datetime(2026, 2, 1, tzinfo=UTC)
    async with runtime.service("graduation").db.transaction() as session:
        await emit(
            session,
            "graduation.decided",
            GraduationDecided(
                decision_id=f"d-{outcome}-{when.timestamp():.0f}",
                participant_id=participant_id,
                assessment_id="a-1",
                outcome=outcome,  # type: ignore[arg-type]
                graduated=graduated,
                kind="sejahtera_mandiri" if graduated else None,
                decided_at=when,
            ),
            subject=participant_id,
            time=when,
        )
    relay = runtime.service("graduation").relay
    assert relay is not None
    await relay.drain()


async def outbox_events(runtime: Runtime, name: str | None = None) -> list[dict[str, Any]]:
    async with runtime.service("participants").db.transaction() as session:
        query = select(outbox.c.event_name, outbox.c.envelope).order_by(outbox.c.id)
        if name:
            query = query.where(outbox.c.event_name == name)
        return [{"name": r.event_name, **r.envelope} for r in (await session.execute(query)).all()]
