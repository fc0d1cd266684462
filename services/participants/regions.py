"""Kemendagri region reference data: a versioned CSV shipped with the service, loaded at startup when
the table is empty, and re-importable (`pena regions import` calls `import_regions`) when codes change.

Villages are not all listed: a 10-digit village code is accepted when its regency (first 4 digits)
is known, so the list stays small while still catching mistyped provinces and regencies."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.db import Database
from pena.settings import Settings
from services.participants import queries

if TYPE_CHECKING:
    from pena.runtime import ServiceRuntime
    from services.participants.models import Region

DEFAULT_REGIONS_CSV = Path(__file__).parent / "data" / "regions.csv"
LEVELS = {2: "province", 4: "regency", 6: "district", 10: "village"}


def read_regions_csv(path: Path) -> list[dict[str, str]]:
    rows = []
    with path.open(newline="", encoding="utf-8") as handle:
        for line in csv.DictReader(handle):
            code = (line.get("code") or "").strip().replace(".", "")
            if not code.isdigit() or len(code) not in LEVELS:
                raise ValueError(f"region code {code!r} is not 2, 4, 6 or 10 digits")
            rows.append(
                {
                    "code": code,
                    "name": (line.get("name") or "").strip(),
                    "level": (line.get("level") or LEVELS[len(code)]).strip(),
                    "version": (line.get("version") or "").strip() or "unversioned",
                }
            )
    return rows


async def upsert_regions(session: AsyncSession, rows: list[dict[str, str]]) -> int:
    return await queries.upsert_regions(session, rows)


async def import_regions(settings: Settings, path: str | Path) -> int:
    """Loads (inserts or updates) the region codes of a CSV (columns version, code, name, level).
    Returns how many rows were written."""
    rows = read_regions_csv(Path(path))
    db = Database.for_service(settings, "participants", null_pool=True)
    try:
        async with db.transaction() as session:
            return await upsert_regions(session, rows)
    finally:
        await db.dispose()


async def load_regions_if_empty(service_runtime: ServiceRuntime) -> None:
    """Startup hook: the shipped reference data, once (later versions come through import_regions)."""
    async with service_runtime.db.transaction() as session:
        if await queries.region_count(session) == 0:
            await upsert_regions(session, read_regions_csv(DEFAULT_REGIONS_CSV))


async def known_regions(session: AsyncSession) -> frozenset[str]:
    """All known codes (a few hundred): validation checks prefixes against this set."""
    return frozenset(await queries.region_codes(session))


def province_known(code: str, known: frozenset[str]) -> bool:
    return code[:2] in known


def region_known(region_code: str, known: frozenset[str]) -> bool:
    """A village code is accepted when its province and regency are known."""
    return region_code[:2] in known and region_code[:4] in known


async def list_regions(session: AsyncSession, *, prefix: str | None, limit: int) -> list[Region]:
    """The reference data, by code (`GET /v1/participants/regions`)."""
    return await queries.list_regions(session, prefix=prefix, limit=limit)
