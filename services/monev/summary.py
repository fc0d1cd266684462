"""The programme summary: completion and results per group, aggregated in PostgreSQL over the tasks
of the caller's region (national reach: every region). Facilitators, whose reach is their own
assignments, do not read it."""

from __future__ import annotations

from datetime import datetime

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.problems import Problem, field_error
from pena.settings import Settings
from services.monev import queries, views
from services.monev.measures import FORMULA_VERSION
from services.monev.schemas import SummaryRead


async def read_summary(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    group_by: str,
    region_prefix: str | None,
    due_before: datetime | None,
) -> SummaryRead:
    reach = reach_of(principal)
    if reach.kind not in ("national", "region"):
        raise Problem(403, "Forbidden", "the summary needs national or region reach", type_="forbidden")
    scope_region = reach.region if reach.kind == "region" else None
    if scope_region and region_prefix and not region_prefix.startswith(scope_region):
        # an aggregate is never silently narrowed: the caller would read it as the wider region's
        raise field_error("region_prefix", "within_unit", "region_prefix must lie within your unit")
    rows = await queries.summary(
        session,
        group_by=group_by,
        business_timezone=settings.business_timezone,
        region_prefix=region_prefix or scope_region,
        due_before=due_before,
    )
    await record_audit(
        session,
        actor=principal,
        action="monev.summary.read",
        subject_type="monev_summary",
        subject_id=None,
        details={"group_by": group_by, "region_prefix": region_prefix or scope_region, "groups": len(rows)},
    )
    return SummaryRead(
        group_by=group_by, formula_version=FORMULA_VERSION, groups=[views.summary_group_read(r) for r in rows]
    )
