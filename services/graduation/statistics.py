"""Statistics on valid time, reproducible on record time: ready / graduated / deferred / rejected
persons on the day `as_of` (what the family's situation was, by visit and effective dates) as the
system knew it at `known_at` (default now), overall and by one dimension with the codes' names; the
same figures as CSV or XLSX with small cells suppressed (pena.http.tabular)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal, get_args

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, list_region_prefix
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.http.tabular import Column
from pena.problems import field_error
from pena.regions import region_names
from pena.settings import Settings
from services.graduation import queries
from services.graduation.schemas import StatisticsCounts, StatisticsGroup, StatisticsRead

NameLookup = Callable[[AsyncSession, Collection[str]], Awaitable[dict[str, str]]]


async def _region_names(session: AsyncSession, codes: Collection[str]) -> dict[str, str]:
    return await region_names(codes)


def _announced(dimension: str) -> NameLookup:
    """Names the owning service announced (training.batch_scheduled: centres, methods, business fields)."""

    async def lookup(session: AsyncSession, codes: Collection[str]) -> dict[str, str]:
        return await queries.reference_names(session, dimension, codes)

    return lookup


def _fixed(names: dict[str, str]) -> NameLookup:
    async def lookup(session: AsyncSession, codes: Collection[str]) -> dict[str, str]:
        return {code: names[code] for code in codes if code in names}

    return lookup


SEX_NAMES = {"F": "Perempuan (female)", "M": "Laki-laki (male)"}
AGE_GROUP_NAMES = {  # the labels of queries.AGE_GROUPS: age in years on the as_of date (by birth year)
    "under_25": "under 25",
    "25_34": "25-34",
    "35_44": "35-44",
    "45_54": "45-54",
    "55_64": "55-64",
    "65_plus": "65 and over",
}
KIND_NAMES = {
    "sejahtera_mandiri": "Graduasi sejahtera mandiri (self-reliant)",
    "alamiah": "Graduasi alamiah (natural)",
    "paksa": "Graduasi paksa (enforced)",
}


@dataclass(frozen=True)
class Dimension:
    """A group_by: the per-participant column of queries.statistics, how its codes are named, and for
    region codes the number of digits kept (None: the request's region_digits)."""

    column: str
    names: NameLookup
    digits: int | None = None


GroupBy = Literal["province", "regency", "region", "centre", "business_field", "method", "sex", "age_group", "kind"]
DIMENSIONS: dict[str, Dimension] = {
    "province": Dimension("region_code", _region_names, digits=2),
    "regency": Dimension("region_code", _region_names, digits=4),
    "region": Dimension("region_code", _region_names),
    "centre": Dimension("centre_id", _announced("centre")),
    "business_field": Dimension("business_field", _announced("business_field")),
    "method": Dimension("method", _announced("method")),
    "sex": Dimension("sex", _fixed(SEX_NAMES)),
    "age_group": Dimension("age_group", _fixed(AGE_GROUP_NAMES)),
    "kind": Dimension("kind", _fixed(KIND_NAMES)),
}
assert set(get_args(GroupBy)) == set(DIMENSIONS), "every group_by has a dimension"

BUCKETS = ("ready", "graduated", "deferred", "rejected")


async def statistics(
    session: AsyncSession,
    *,
    principal: Principal,
    reach: Reach,
    as_of: date,
    known_at: datetime | None,
    group_by: str | None,
    region: str | None,
    region_digits: int,
    settings: Settings,
    clock: Clock,
    export: str | None = None,
) -> StatisticsRead:
    now = clock.now()
    if known_at is not None and known_at > now:
        # a figure "as known" at a moment still to come could change: it is not a reproducible figure
        raise field_error("known_at", "not_in_future", "known_at must not lie in the future")
    known = known_at or now
    if region_digits not in (2, 4, 6, 10):  # a query Literal of ints refuses "10": checked here
        raise field_error("region_digits", "one_of", "region_digits must be 2, 4, 6 or 10")
    dimension = DIMENSIONS[group_by] if group_by else None
    prefix = list_region_prefix(reach, region)
    rows = (
        await queries.statistics(
            session,
            as_of=as_of,
            known_at=known,
            business_timezone=settings.business_timezone,
            group_column=dimension.column if dimension else None,
            digits=(dimension.digits or region_digits) if dimension and dimension.column == "region_code" else None,
            region_prefix=prefix,
        )
        if prefix is not None
        else []
    )
    groups: dict[str | None, StatisticsGroup] = {}
    totals = StatisticsGroup(key=None, kpm=StatisticsCounts())
    for row in rows:
        group = (
            totals if row.total else groups.setdefault(row.key, StatisticsGroup(key=row.key, kpm=StatisticsCounts()))
        )
        setattr(group.persons, row.bucket, row.persons)
        setattr(group.kpm, row.bucket, row.kpm)
    if dimension:
        names = await dimension.names(session, [k for k in groups if k is not None])
        for key, group in groups.items():
            group.name = names.get(key) if key is not None else None
    await record_audit(
        session,
        actor=principal,
        action="graduation.statistics.export" if export else "graduation.statistics.read",
        subject_type="statistics",
        subject_id=None,
        purpose="reporting",
        details={
            "as_of": as_of.isoformat(),
            "known_at": known.isoformat(),
            "group_by": group_by,
            "region": prefix,
            "format": export,
        },
    )
    return StatisticsRead(
        as_of=as_of,
        known_at=known,
        group_by=group_by,
        totals=totals,
        groups=list(groups.values()) if group_by else [],
    )


# ------------------------------------------------------------------ export

EXPORT_COLUMNS = (
    Column("code"),
    Column("name"),
    *(Column(f"persons_{b}", count=True) for b in BUCKETS),
    *(Column(f"kpm_{b}", count=True) for b in BUCKETS),
)


def _row(code: str | None, name: str | None, group: StatisticsGroup) -> dict[str, Any]:
    row: dict[str, Any] = {"code": code, "name": name}
    for bucket in BUCKETS:
        row[f"persons_{bucket}"] = getattr(group.persons, bucket)
        row[f"kpm_{bucket}"] = getattr(group.kpm, bucket) if group.kpm else None
    return row


def export_rows(answer: StatisticsRead) -> list[dict[str, Any]]:
    """One row per group, then the totals (code `total`); every count its own column."""
    rows = [_row(g.key, g.name, g) for g in answer.groups]
    rows.append(_row("total", "Total", answer.totals))
    return rows
