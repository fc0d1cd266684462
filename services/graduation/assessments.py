"""Assessments: each Monev result judged against the policy in force on the visit date (one current
assessment per participant, newer results supersede), their reads and the verifier's evidence check."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, list_region_prefix
from pena.audit import audit_subjects, record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.consumer import RetryLater
from pena.contracts.graduation import GraduationAssessed
from pena.contracts.monev import MonevCompleted
from pena.ids import new_id
from pena.outbox import emit
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem
from services.graduation import queries
from services.graduation.models import Assessment
from services.graduation.policy import PovertyFigure, ReferenceFigures, WageFigure, evaluate
from services.graduation.reads import audit_read, reached
from services.graduation.schemas import AssessmentRead, VerificationCommand

_REGION = re.compile(r"^\d{10}$")


def _is_newer(candidate: MonevCompleted, held: Assessment) -> bool:
    """A correction of the same survey wins by submission_version; another survey by visit date."""
    if candidate.task_id == held.monev_task_id:
        return candidate.submission_version > held.submission_version
    return (candidate.visit_date, candidate.completed_at) > (held.visit_date, held.monev_completed_at)


async def _reference_figures(session: AsyncSession, region_code: str, year: int) -> ReferenceFigures:
    regency, province = region_code[:4], region_code[:2]
    wage_row = await queries.minimum_wage(session, "umk", regency, year) or await queries.minimum_wage(
        session, "ump", province, year
    )
    line_row = await queries.poverty_line(session, year)
    return ReferenceFigures(
        year=year,
        regency_code=regency,
        province_code=province,
        wage=None
        if wage_row is None
        else WageFigure(
            level=wage_row.level,
            region_code=wage_row.region_code,
            year=wage_row.year,
            amount=wage_row.amount,
            source=wage_row.source,
            is_example=wage_row.is_example,
        ),
        poverty_line=None
        if line_row is None
        else PovertyFigure(
            year=line_row.year, amount=line_row.amount, source=line_row.source, is_example=line_row.is_example
        ),
    )


async def assess_monev(session: AsyncSession, *, result: MonevCompleted, clock: Clock) -> Assessment | None:
    """Assesses one Monev result against the policy in force on the visit date. Returns None when this
    exact submission was assessed already (same task, same submission version)."""
    now = clock.now()
    await queries.lock_key(session, f"graduation-participant:{result.participant_id}")
    if await queries.assessment_for_submission(session, result.task_id, result.submission_version):
        return None
    region_code = result.region_code
    if region_code is None:
        view = await queries.participant_view(session, result.participant_id)
        region_code = view.region_code if view else None
    if region_code is None:
        raise RetryLater("region of the participant unknown: participant.registered not seen yet")
    if not _REGION.match(region_code):
        raise ValueError("monev.completed carries a region_code that is not a 10-digit village code")

    policy = await queries.policy_in_force(session, result.visit_date)
    if policy is None:
        raise RetryLater("no graduation policy published yet")
    refs = await _reference_figures(session, region_code, result.visit_date.year)
    outcome, criteria = evaluate(policy.criteria, result.indicators, refs)

    held = await queries.current_assessment(session, result.participant_id)
    late = held is not None and not _is_newer(result, held)
    assessment = Assessment(
        id=new_id(),
        participant_id=result.participant_id,
        monev_task_id=result.task_id,
        submission_version=result.submission_version,
        visit_date=result.visit_date,
        monev_completed_at=result.completed_at,
        region_code=region_code,
        centre_id=result.centre_id,
        batch_id=result.batch_id,
        business_field=result.business_field or result.indicators.business_field,
        outcome=outcome,
        policy_id=policy.id,
        policy_version=policy.version,
        criteria=[c.model_dump(mode="json") for c in criteria],
        reference_values=refs.as_record(),
        voluntary_exit_statement=result.indicators.voluntary_exit_statement,
        assessed_at=now,
    )
    if late and held is not None:
        # an older survey arriving after a newer one is kept for the record but never current
        assessment.status = "superseded"
        assessment.superseded_by_assessment_id = held.id
        assessment.superseded_at = now
    elif held is not None:
        held.status = "superseded"
        held.superseded_by_assessment_id = assessment.id
        held.superseded_at = now
        assessment.supersedes_assessment_id = held.id
    # the old current row must leave "current" before the new one arrives
    await session.flush()
    session.add(assessment)
    await session.flush()
    await record_audit(
        session,
        actor=None,
        action="graduation.assessed",
        subject_type="participant",
        subject_id=result.participant_id,
        details={"assessment_id": assessment.id, "outcome": outcome, "late": late},
    )
    if not late:
        await emit(
            session,
            "graduation.assessed",
            GraduationAssessed(
                assessment_id=assessment.id,
                participant_id=assessment.participant_id,
                monev_task_id=assessment.monev_task_id,
                outcome=outcome,
                policy_id=policy.id,
                policy_version=policy.version,
                criteria=criteria,
                supersedes_assessment_id=assessment.supersedes_assessment_id,
                assessed_at=now,
            ),
            subject=assessment.participant_id,
            time=now,
        )
    return assessment


async def read_assessment(
    session: AsyncSession, *, assessment_id: str, reach: Reach, for_update: bool = False
) -> Assessment:
    found = await queries.get_assessment(session, assessment_id, for_update=for_update)
    return reached(found, reach, kind="assessment", ident=assessment_id)


async def audited_assessment(
    session: AsyncSession, *, assessment_id: str, principal: Principal, reach: Reach
) -> Assessment:
    assessment = await read_assessment(session, assessment_id=assessment_id, reach=reach)
    # income figures are specific personal data (UU PDP): every read is recorded
    await audit_read(session, principal, assessment, kind="assessment")
    return assessment


async def list_assessments(
    session: AsyncSession,
    *,
    principal: Principal,
    reach: Reach,
    outcome: str | None,
    participant_id: str | None,
    region: str | None,
    status: str | None,
    page: PageRequest,
) -> Page[AssessmentRead]:
    after = read_cursor(page, ("at", datetime), ("id", str))
    prefix = list_region_prefix(reach, region)
    if prefix is None:
        return keyset_page([], page, key=_assessment_key, item=AssessmentRead.model_validate)
    rows = await queries.list_assessments(
        session,
        outcome=outcome,
        participant_id=participant_id,
        region_prefix=prefix,
        status=status,
        after=after,
        limit=page.limit,
    )
    await audit_subjects(  # a list of incomes and notes: one audit row per assessment shown
        session,
        principal,
        "graduation.assessments.listed",
        "assessment",
        [a.id for a in rows[: page.limit]],
        "graduation",
        details={"filters": {"outcome": outcome, "participant_id": participant_id, "region": prefix, "status": status}},
    )
    return keyset_page(rows, page, key=_assessment_key, item=AssessmentRead.model_validate)


def _assessment_key(assessment: Assessment) -> dict[str, Any]:
    return {"at": assessment.assessed_at.isoformat(), "id": assessment.id}


async def verify_assessment(
    session: AsyncSession,
    *,
    assessment_id: str,
    body: VerificationCommand,
    principal: Principal,
    reach: Reach,
    clock: Clock,
) -> Assessment:
    now = clock.now()
    assessment = await read_assessment(session, assessment_id=assessment_id, reach=reach, for_update=True)
    if assessment.status != "current":
        raise Problem(
            409,
            "Assessment superseded",
            "a newer Monev result replaced this assessment; verify the current one",
            type_="assessment_superseded",
            current_id=assessment.superseded_by_assessment_id,
        )
    reverification = assessment.reverification_required
    if assessment.verified_at is not None and not reverification:
        raise Problem(409, "Already verified", "this assessment was verified already", type_="already_verified")
    # after a reversal on appeal the evidence is checked again: the new check replaces the old one
    # (the audit log keeps both) and opens the assessment for a new decision
    assessment.reverification_required = False
    assessment.verified_by = principal.subject
    assessment.verified_at = now
    assessment.evidence_checked = body.evidence_checked
    assessment.verification_notes = body.notes
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action="graduation.assessment.verified",
        subject_type="participant",
        subject_id=assessment.participant_id,
        purpose="graduation",
        details={
            "assessment_id": assessment.id,
            "evidence_checked": body.evidence_checked,
            "after_reversal": reverification,
        },
    )
    return assessment
