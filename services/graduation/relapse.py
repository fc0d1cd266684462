"""Relapse after graduation (issue 14 item 5). A Monev mentoring visit (`monev.completed` with kind
`mentoring`, scheduled by monev from `graduation.decided`) is not a readiness assessment: it never
supersedes the assessment the family graduated on. It is checked against the extreme-poverty line of
the visit year (the reference data of `reference.py`); income per person below the line records a
relapse case (one per Monev task) and raises `graduation.relapse_flagged` for the case workers, who
list the cases by region (`GET /v1/graduation/relapses`). A redelivered or re-announced result changes
nothing; a corrected survey (higher submission version) updates the case, or clears it when the
corrected income is no longer below the line."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, list_region_prefix
from pena.audit import audit_subjects, record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.consumer import RetryLater
from pena.contracts.graduation import GraduationRelapseFlagged
from pena.contracts.monev import MonevCompleted
from pena.ids import new_id
from pena.outbox import emit
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from services.graduation import queries
from services.graduation.models import RelapseCase
from services.graduation.policy import PovertyFigure, below_poverty_line
from services.graduation.reads import audit_read, reached
from services.graduation.schemas import RelapseRead


async def check_mentoring_visit(session: AsyncSession, *, result: MonevCompleted, clock: Clock) -> RelapseCase | None:
    """Judges one mentoring visit; returns the relapse case of its task (None when there is none)."""
    now = clock.now()
    await queries.lock_key(session, f"graduation-participant:{result.participant_id}")
    held = await queries.relapse_case_for_task(session, result.task_id)
    if held is not None and held.submission_version >= result.submission_version:
        return held  # this survey version (or a newer one) was judged already
    view = await queries.participant_view(session, result.participant_id)
    if view is not None and view.status == "erased":
        return None  # a late visit of an erased family: its figures are not kept
    region_code = result.region_code or (view.region_code if view else None)
    if region_code is None:
        raise RetryLater("region of the participant unknown: participant.registered not seen yet")
    line_row = await queries.poverty_line(session, result.visit_date.year)
    checked: dict[str, Any] = {"monev_task_id": result.task_id, "submission_version": result.submission_version}
    if line_row is None:
        # nothing to compare with: recorded, and the case workers see no case (load the line, replay)
        await _audit(
            session, result, checked | {"relapse": None, "note": f"no poverty line for {result.visit_date.year}"}
        )
        return held
    line = PovertyFigure(
        year=line_row.year, amount=line_row.amount, source=line_row.source, is_example=line_row.is_example
    )
    income = result.indicators.monthly_household_income
    per_member, below = below_poverty_line(income, result.indicators.household_size, line)
    figures: dict[str, Any] = {
        "submission_version": result.submission_version,
        "visit_date": result.visit_date,
        "region_code": region_code,
        "monthly_household_income": income,
        "household_size": result.indicators.household_size,
        "income_per_member": per_member,
        "poverty_line": line.amount,
        "poverty_line_year": line.year,
        "poverty_line_source": line.source,
        "updated_at": now,
    }
    if not below:
        if held is not None:  # a corrected survey puts the family back above the line
            for name, value in figures.items():
                setattr(held, name, value)
            held.status = "cleared"
            await session.flush()
        await _audit(session, result, checked | {"relapse": False, "cleared": held is not None})
        return held
    case = held or RelapseCase(
        id=new_id(),
        participant_id=result.participant_id,
        decision_id=result.decision_id,
        monev_task_id=result.task_id,
        wave=result.wave,
        flagged_at=now,
        **figures,
    )
    for name, value in figures.items():
        setattr(case, name, value)
    case.status = "open"
    session.add(case)
    await session.flush()
    await _audit(session, result, checked | {"relapse": True, "relapse_id": case.id})
    await emit(
        session,
        "graduation.relapse_flagged",
        GraduationRelapseFlagged(
            relapse_id=case.id,
            participant_id=case.participant_id,
            decision_id=case.decision_id,
            monev_task_id=case.monev_task_id,
            submission_version=case.submission_version,
            wave=case.wave,
            visit_date=case.visit_date,
            income_per_member=case.income_per_member,
            poverty_line=case.poverty_line,
            poverty_line_year=case.poverty_line_year,
            flagged_at=now,
        ),
        subject=case.participant_id,
        time=now,
    )
    return case


async def _audit(session: AsyncSession, result: MonevCompleted, details: dict[str, Any]) -> None:
    await record_audit(
        session,
        actor=None,
        action="graduation.mentoring.checked",
        subject_type="participant",
        subject_id=result.participant_id,
        purpose="graduation mentoring",
        details=details,
    )


def _case_key(case: RelapseCase) -> dict[str, Any]:
    return {"at": case.flagged_at.isoformat(), "id": case.id}


async def list_relapses(
    session: AsyncSession,
    *,
    principal: Principal,
    reach: Reach,
    status: str | None,
    participant_id: str | None,
    region: str | None,
    page: PageRequest,
) -> Page[RelapseRead]:
    """Relapse cases in the caller's reach, newest first; one audit row per case shown."""
    after = read_cursor(page, ("at", datetime), ("id", str))
    prefix = list_region_prefix(reach, region)
    if prefix is None:
        return keyset_page([], page, key=_case_key, item=RelapseRead.model_validate)
    rows = await queries.list_relapse_cases(
        session, status=status, participant_id=participant_id, region_prefix=prefix, after=after, limit=page.limit
    )
    await audit_subjects(
        session,
        principal,
        "graduation.relapses.listed",
        "relapse_case",
        [c.id for c in rows[: page.limit]],
        "graduation",
        details={"filters": {"status": status, "participant_id": participant_id, "region": prefix}},
    )
    return keyset_page(rows, page, key=_case_key, item=RelapseRead.model_validate)


async def read_relapse(session: AsyncSession, *, case_id: str, principal: Principal, reach: Reach) -> RelapseCase:
    case = reached(await queries.get_relapse_case(session, case_id), reach, kind="relapse_case", ident=case_id)
    await audit_read(session, principal, case, kind="relapse_case")
    return case
