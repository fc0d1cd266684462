"""The programme summary: completion and results per group, aggregated in PostgreSQL over the tasks
of the caller's region (national reach: every region). Facilitators, whose reach is their own
assignments, do not read it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import reach_of
from pena.audit import record_audit
from pena.auth import Principal
from pena.http.tabular import Column
from pena.problems import Problem, field_error
from pena.regions import region_names
from pena.settings import Settings
from services.monev import queries, views
from services.monev.measures import FORMULA_VERSION
from services.monev.schemas import SummaryGroupRead, SummaryRead

# group_by -> how its codes are named (groups without an entry show the code only: monev knows no
# names of centres or business fields, training announces them to graduation, not here)
GROUP_NAMES: dict[str, Callable[[Iterable[str | None]], Awaitable[dict[str, str]]]] = {
    "province": region_names,
    "regency": region_names,
}


async def read_summary(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    group_by: str,
    region_prefix: str | None,
    due_before: datetime | None,
    export: str | None = None,
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
        action="monev.summary.export" if export else "monev.summary.read",
        subject_type="monev_summary",
        subject_id=None,
        details={
            "group_by": group_by,
            "region_prefix": region_prefix or scope_region,
            "groups": len(rows),
            "format": export,
        },
    )
    groups = [views.summary_group_read(r) for r in rows]
    if namer := GROUP_NAMES.get(group_by):
        names = await namer(g.group for g in groups)
        for group in groups:
            group.name = names.get(group.group) if group.group else None
    return SummaryRead(group_by=group_by, formula_version=FORMULA_VERSION, groups=groups)


# ------------------------------------------------------------------ export

# task counts are counts of families' follow-ups; every survey figure rests on `surveyed` surveys, the
# completion rate on `tasks_due` tasks: each is suppressed with its base (pena.http.tabular)
EXPORT_COLUMNS = (
    Column("group"),
    Column("name"),
    Column("tasks_total", count=True),
    Column("tasks_due", count=True),
    Column("tasks_done", count=True),
    Column("tasks_overdue", count=True),
    Column("persons", count=True),
    Column("kpm", count=True),
    Column("completion_rate", base="tasks_due"),
    Column("surveyed", count=True),
    Column("income_change_q1", base="surveyed"),
    Column("income_change_median", base="surveyed"),
    Column("income_change_q3", base="surveyed"),
    Column("business_active_share", base="surveyed"),
    Column("welfare_index_mean", base="surveyed"),
    Column("independence_index_mean", base="surveyed"),
)


def export_row(group: SummaryGroupRead) -> dict[str, Any]:
    row = group.model_dump(exclude={"income_change"})
    row["income_change_q1"] = group.income_change.q1
    row["income_change_median"] = group.income_change.median
    row["income_change_q3"] = group.income_change.q3
    return row
