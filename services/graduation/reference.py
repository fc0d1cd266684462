"""Reference data: minimum wages (UMK/UMP) and poverty lines per year, uploaded by policy admins, and
the seed loaded into an empty database at start-up (with the default policy v1)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.ids import new_id
from pena.problems import field_error
from services.graduation import queries
from services.graduation.models import MinimumWage, Policy, PovertyLine
from services.graduation.policy import DEFAULT_CRITERIA
from services.graduation.schemas import MinimumWageRead, MinimumWageUpdate, PovertyLineRead, PovertyLineUpdate

SEED_FILE = Path(__file__).parent / "data" / "reference_seed.json"


async def _upsert(
    session: AsyncSession,
    table: queries.ReferenceTable,
    rows: list[MinimumWageUpdate] | list[PovertyLineUpdate],
    *,
    name: str,
    actor: Principal | None,
    clock: Clock,
) -> int:
    stamp = {"updated_at": clock.now(), "updated_by": actor.subject if actor else "seed"}
    await queries.upsert_reference(session, table, [row.model_dump() | stamp for row in rows])
    await record_audit(
        session,
        actor=actor,
        action=f"graduation.reference.{name}.upserted",
        subject_type="reference",
        subject_id=name,
        details={"rows": len(rows), "years": sorted({r.year for r in rows})},
    )
    return len(rows)


async def upsert_minimum_wages(
    session: AsyncSession, *, rows: list[MinimumWageUpdate], actor: Principal | None, clock: Clock
) -> int:
    for row in rows:
        if (row.level == "umk") != (len(row.region_code) == 4):
            raise field_error(
                "region_code", "level_region_length", "UMK rows take a 4-digit regency code, UMP rows 2 digits"
            )
    return await _upsert(session, MinimumWage, rows, name="minimum_wages", actor=actor, clock=clock)


async def upsert_poverty_lines(
    session: AsyncSession, *, rows: list[PovertyLineUpdate], actor: Principal | None, clock: Clock
) -> int:
    return await _upsert(session, PovertyLine, rows, name="poverty_lines", actor=actor, clock=clock)


async def list_minimum_wages(session: AsyncSession, *, year: int | None, region: str | None) -> list[MinimumWageRead]:
    rows = await queries.list_minimum_wages(session, year=year, region_prefix=region)
    return [MinimumWageRead.model_validate(r) for r in rows]


async def list_poverty_lines(session: AsyncSession) -> list[PovertyLineRead]:
    return [PovertyLineRead.model_validate(r) for r in await queries.list_poverty_lines(session)]


def read_seed(seed_file: Path = SEED_FILE) -> dict[str, Any]:
    seed: dict[str, Any] = json.loads(seed_file.read_text(encoding="utf-8"))
    return seed


async def seed_reference_data(session: AsyncSession, *, seed: dict[str, Any], clock: Clock) -> None:
    """Loads the shipped seed when the tables are empty, and a default policy v1 when none exists."""
    now = clock.now()
    await queries.lock_key(session, "graduation-seed")
    wages, lines = await queries.reference_counts(session)
    if wages == 0:
        rows = [MinimumWageUpdate.model_validate(r) for r in seed["minimum_wages"]]
        await upsert_minimum_wages(session, rows=rows, actor=None, clock=clock)
    if lines == 0:
        line_rows = [PovertyLineUpdate.model_validate(r) for r in seed["poverty_lines"]]
        await upsert_poverty_lines(session, rows=line_rows, actor=None, clock=clock)
    if await queries.latest_policy_version(session) == 0:
        default = seed.get("default_policy", {})
        session.add(
            Policy(
                id=new_id(),
                version=1,
                effective_from=date.fromisoformat(default.get("effective_from", "2020-01-01")),
                criteria=default.get("criteria", DEFAULT_CRITERIA),
                note=default.get("note", "default policy seeded at startup"),
                created_at=now,
                created_by="seed",
            )
        )
        await session.flush()
