"""Test support for the participants service: sample identities (real region codes, consistent NIKs) and
graduation decisions as the stand-in graduation service announces them. Stand-in publishers and
outbox/audit readers are shared: tests/support.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.contracts import GraduationDecided
from pena.deadletters import parked_dead_letters
from pena.runtime import Runtime
from tests.support import Announcement, in_service, publish

# Woman born 12 May 1990, first registered in 13.71.01 (Bungus Teluk Kabung, Kota Padang): day 12 + 40 = 52
WOMAN_NIK = "1371015205900001"
# Man born 3 January 1985, same district
MAN_NIK = "1371010301850002"
KK = "1371012001150003"  # registered 20 January 2015
# another family (registered 15 March 2010): one KPM has one participant in the programme by default
MAN_KK = "1371011503100004"

CONSENT = {"purpose": "PENA programme participation and follow-up", "given_on": "2026-10-01", "recorded_by": "fac-1"}


def family_of(nik: str) -> str:
    """A KK number of a family of its own for a test person (region of the NIK, 15 March 2010, the
    NIK's serial): one KPM has one participant in the programme by default (PENA_HOUSEHOLD_ACTIVE_LIMIT)."""
    return f"{nik[:6]}150310{nik[12:16]}"


def _own_family(body: dict[str, Any], overrides: dict[str, Any]) -> None:
    if "nik" in overrides and "kk_number" not in overrides and isinstance(overrides["nik"], str):
        body["kk_number"] = family_of(overrides["nik"])


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
    _own_family(body, overrides)
    return body


def man(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "nik": MAN_NIK,
        "kk_number": MAN_KK,
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
    _own_family(body, overrides)
    return body


def decision(participant_id: str, *, graduated: bool, outcome: str, at: datetime | None = None) -> Announcement:
    """graduation.decided as the graduation service announces it."""
    when = at or datetime(2026, 2, 1, tzinfo=UTC)
    decided = GraduationDecided(
        decision_id=f"d-{outcome}-{when.timestamp():.0f}",
        participant_id=participant_id,
        assessment_id="a-1",
        outcome=outcome,  # type: ignore[arg-type]
        graduated=graduated,
        kind="sejahtera_mandiri" if graduated else None,
        decided_at=when,
    )
    return Announcement("graduation.decided", decided, participant_id, when)


async def decide_graduation(
    runtime: Runtime, participant_id: str, *, graduated: bool, outcome: str, at: datetime | None = None
) -> None:
    """Announces graduation.decided from the stand-in graduation service (in-process: runs the handler)."""
    await publish(runtime, decision(participant_id, graduated=graduated, outcome=outcome, at=at))


async def dead_letter_errors(runtime: Runtime) -> list[str]:
    """The errors of the participants service's parked dead letters, oldest first."""

    async def read(session: AsyncSession) -> list[str]:
        return [str(row["error"]) for row in await parked_dead_letters(session)]

    return await in_service(runtime, "participants", read)
