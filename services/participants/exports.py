"""The CSV and XLSX exports of the participant list (the list's filters, the caller's reach; scope
participants:export; XLSX through pena.http.tabular: a list of persons, nothing suppressed). Every
cell a spreadsheet would read as a formula is neutralised, and every exported participant gets its own
audit row (written in one statement by the list read)."""

from __future__ import annotations

import csv
import io
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.http.tabular import cell as cell  # formula-safe cells, the kernel's (shared with every export)
from pena.settings import Settings
from services.participants.reads import ParticipantFilter, list_participants
from services.participants.views import view

EXPORT_LIMIT = 100_000
EXPORT_COLUMNS = (
    "id",
    "nik",
    "full_name",
    "sex",
    "birth_year",
    "region_code",
    "business_field",
    "assistance_programmes",
    "dtsen_decile",
    "status",
    "version",
)


async def participants_rows(
    session: AsyncSession, *, principal: Principal, settings: Settings, filters: ParticipantFilter
) -> list[dict[str, Any]]:
    """The exported participants as the caller may see them (NIK masked without participants:read_nik),
    one audit row per subject."""
    rows = await list_participants(
        session, principal=principal, filters=filters, after=None, limit=EXPORT_LIMIT, action="participant.export"
    )
    seen_rows = []
    for participant in rows[:EXPORT_LIMIT]:
        seen = view(participant, principal=principal, settings=settings)
        seen["assistance_programmes"] = ";".join(seen["assistance_programmes"])
        seen_rows.append({c: seen[c] for c in EXPORT_COLUMNS})
    return seen_rows


async def participants_csv(
    session: AsyncSession, *, principal: Principal, settings: Settings, filters: ParticipantFilter
) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for seen in await participants_rows(session, principal=principal, settings=settings, filters=filters):
        writer.writerow([cell(seen[c]) for c in EXPORT_COLUMNS])
    return out.getvalue()
