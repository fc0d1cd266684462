"""As-of statistics: ready / graduated / deferred / rejected counts at the end of a business day."""

from __future__ import annotations

from datetime import date

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, list_region_prefix
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import end_of_business_day
from pena.settings import Settings
from services.graduation import queries
from services.graduation.schemas import StatisticsGroup, StatisticsRead


async def statistics(
    session: AsyncSession,
    *,
    principal: Principal,
    reach: Reach,
    as_of: date,
    group_by: str | None,
    region: str | None,
    region_digits: int,
    settings: Settings,
) -> StatisticsRead:
    cutoff = end_of_business_day(as_of, settings.business_timezone)
    prefix = list_region_prefix(reach, region)
    rows = (
        await queries.statistics(
            session, cutoff=cutoff, group_by=group_by, region_prefix=prefix, region_digits=region_digits
        )
        if prefix is not None
        else []
    )
    groups: dict[str | None, StatisticsGroup] = {}
    totals = StatisticsGroup(key=None)
    for key, bucket, count in rows:
        group = groups.setdefault(key, StatisticsGroup(key=key))
        setattr(group, bucket, getattr(group, bucket) + count)
        setattr(totals, bucket, getattr(totals, bucket) + count)
    await record_audit(
        session,
        actor=principal,
        action="graduation.statistics.read",
        subject_type="statistics",
        subject_id=None,
        purpose="reporting",
        details={"as_of": as_of.isoformat(), "group_by": group_by, "region": prefix},
    )
    return StatisticsRead(
        as_of=as_of,
        group_by=group_by,
        cutoff=cutoff,
        totals=totals,
        groups=list(groups.values()) if group_by else [],
    )
