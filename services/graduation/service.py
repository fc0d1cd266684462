"""Graduation use cases: keyword-only async functions taking the session; they never commit."""

from __future__ import annotations

import json
import re
from datetime import date, datetime
from pathlib import Path
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock, business_date, end_of_business_day
from pena.consumer import RetryLater
from pena.contracts.graduation import GraduationAppealed, GraduationAssessed, GraduationDecided
from pena.contracts.monev import MonevCompleted
from pena.durations import add_duration
from pena.ids import new_id
from pena.outbox import emit
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, field_error, not_found
from pena.settings import Settings
from services.graduation import queries
from services.graduation.models import (
    Appeal,
    Assessment,
    Decision,
    MinimumWage,
    ParticipantView,
    Policy,
    PovertyLine,
)
from services.graduation.policy import DEFAULT_CRITERIA, PovertyFigure, ReferenceFigures, WageFigure, evaluate
from services.graduation.schemas import (
    AppealCreate,
    AppealDecisionCreate,
    AssessmentRead,
    DecisionCreate,
    DecisionRead,
    MinimumWageRow,
    PolicyCreate,
    PovertyLineRow,
    StatisticsGroup,
    StatisticsRead,
    VerificationCreate,
)
from services.graduation.settings import GraduationSettings

SEED_FILE = Path(__file__).parent / "data" / "reference_seed.json"
_REGION = re.compile(r"^\d{10}$")


def within_unit(principal: Principal, region_code: str | None) -> bool:
    """Tokens with a unit (a region prefix) act only on records of that region."""
    if principal.unit is None:
        return True
    return region_code is not None and region_code.startswith(principal.unit)


def scoped_region_prefix(principal: Principal, requested: str | None) -> tuple[str | None, bool]:
    """The region prefix a list may use, and False when the request lies wholly outside the unit."""
    unit = principal.unit
    if unit is None or (requested and requested.startswith(unit)):
        return requested, True
    if not requested or unit.startswith(requested):
        return unit, True
    return None, False


# ------------------------------------------------------------------ reference data


async def upsert_minimum_wages(
    session: AsyncSession, *, rows: list[MinimumWageRow], actor: Principal | None, clock: Clock
) -> int:
    now = clock.now()
    for row in rows:
        if (row.level == "umk") != (len(row.region_code) == 4):
            raise field_error(
                "region_code", "level_region_length", "UMK rows take a 4-digit regency code, UMP rows 2 digits"
            )
    for row in rows:
        values = row.model_dump() | {"updated_at": now, "updated_by": actor.subject if actor else "seed"}
        statement = pg_insert(MinimumWage).values(**values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["level", "region_code", "year"],
                set_={k: statement.excluded[k] for k in ("amount", "source", "is_example", "updated_at", "updated_by")},
            )
        )
    await record_audit(
        session,
        actor=actor,
        action="graduation.reference.minimum_wages.upserted",
        subject_type="reference",
        subject_id="minimum_wages",
        details={"rows": len(rows), "years": sorted({r.year for r in rows})},
    )
    return len(rows)


async def upsert_poverty_lines(
    session: AsyncSession, *, rows: list[PovertyLineRow], actor: Principal | None, clock: Clock
) -> int:
    now = clock.now()
    for row in rows:
        values = row.model_dump() | {"updated_at": now, "updated_by": actor.subject if actor else "seed"}
        statement = pg_insert(PovertyLine).values(**values)
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["year"],
                set_={k: statement.excluded[k] for k in ("amount", "source", "is_example", "updated_at", "updated_by")},
            )
        )
    await record_audit(
        session,
        actor=actor,
        action="graduation.reference.poverty_lines.upserted",
        subject_type="reference",
        subject_id="poverty_lines",
        details={"rows": len(rows), "years": sorted({r.year for r in rows})},
    )
    return len(rows)


def read_seed(seed_file: Path = SEED_FILE) -> dict[str, Any]:
    seed: dict[str, Any] = json.loads(seed_file.read_text(encoding="utf-8"))
    return seed


async def seed_reference_data(session: AsyncSession, *, seed: dict[str, Any], clock: Clock) -> None:
    """Loads the shipped seed when the tables are empty, and a default policy v1 when none exists."""
    now = clock.now()
    await queries.lock_key(session, "graduation-seed")
    wages, lines = await queries.reference_counts(session)
    if wages == 0:
        rows = [MinimumWageRow.model_validate(r) for r in seed["minimum_wages"]]
        await upsert_minimum_wages(session, rows=rows, actor=None, clock=clock)
    if lines == 0:
        line_rows = [PovertyLineRow.model_validate(r) for r in seed["poverty_lines"]]
        await upsert_poverty_lines(session, rows=line_rows, actor=None, clock=clock)
    if await queries.latest_policy_version(session) == 0:
        default = seed.get("default_policy", {})
        session.add(
            Policy(
                id=new_id(),
                version=1,
                effective_from=date.fromisoformat(default.get("effective_from", "2020-01-01")),
                criteria=default.get("criteria", DEFAULT_CRITERIA),
                note=default.get("note", "default policy seeded at startup"),
                created_at=now,
                created_by="seed",
            )
        )
        await session.flush()


# ------------------------------------------------------------------ policies


async def publish_policy(session: AsyncSession, *, body: PolicyCreate, actor: Principal, clock: Clock) -> Policy:
    now = clock.now()
    await queries.lock_key(session, "graduation-policy")
    previous = await queries.latest_policy_version(session)
    policies = await queries.list_policies(session)
    if policies and body.effective_from < policies[-1].effective_from:
        raise field_error(
            "effective_from",
            "not_before_previous_version",
            f"effective_from must not precede version {previous}'s ({policies[-1].effective_from})",
        )
    policy = Policy(
        id=new_id(),
        version=previous + 1,
        effective_from=body.effective_from,
        criteria=body.criteria.model_dump(),
        note=body.note,
        created_at=now,
        created_by=actor.subject,
    )
    session.add(policy)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="graduation.policy.published",
        subject_type="policy",
        subject_id=policy.id,
        details={"version": policy.version, "effective_from": policy.effective_from.isoformat()},
    )
    return policy


# ------------------------------------------------------------------ participants read model


async def apply_participant_facts(
    session: AsyncSession,
    *,
    participant_id: str,
    version: int,
    region_code: str | None,
    status: str | None,
    clock: Clock,
) -> None:
    """Keeps the newest version; an older event only fills a region still unknown."""
    now = clock.now()
    facts = ParticipantView(
        participant_id=participant_id, region_code=region_code, status=status, version=version, updated_at=now
    )
    await queries.apply_participant_facts(session, facts)


# ------------------------------------------------------------------ assessment


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


# ------------------------------------------------------------------ reads


async def read_assessment(
    session: AsyncSession, *, assessment_id: str, principal: Principal, for_update: bool = False
) -> Assessment:
    assessment = await queries.get_assessment(session, assessment_id, for_update=for_update)
    if assessment is None or not within_unit(principal, assessment.region_code):
        raise not_found("assessment", assessment_id)
    return assessment


async def audited_assessment(session: AsyncSession, *, assessment_id: str, principal: Principal) -> Assessment:
    assessment = await read_assessment(session, assessment_id=assessment_id, principal=principal)
    # income figures are specific personal data (UU PDP): every read is recorded
    await record_audit(
        session,
        actor=principal,
        action="graduation.assessment.read",
        subject_type="participant",
        subject_id=assessment.participant_id,
        purpose="graduation",
        details={"assessment_id": assessment.id},
    )
    return assessment


async def list_assessments(
    session: AsyncSession,
    *,
    principal: Principal,
    outcome: str | None,
    participant_id: str | None,
    region: str | None,
    status: str | None,
    page: PageRequest,
) -> Page[AssessmentRead]:
    after = read_cursor(page, ("at", datetime), ("id", str))
    prefix, possible = scoped_region_prefix(principal, region)
    if not possible:
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
    await record_audit(
        session,
        actor=principal,
        action="graduation.assessments.listed",
        subject_type="assessment",
        subject_id=None,
        purpose="graduation",
        details={
            "filters": {"outcome": outcome, "participant_id": participant_id, "region": prefix, "status": status},
            "returned": min(len(rows), page.limit),
        },
    )
    return keyset_page(rows, page, key=_assessment_key, item=AssessmentRead.model_validate)


def _assessment_key(assessment: Assessment) -> dict[str, Any]:
    return {"at": assessment.assessed_at.isoformat(), "id": assessment.id}


def _decision_key(decision: Decision) -> dict[str, Any]:
    return {"at": decision.decided_at.isoformat(), "id": decision.id}


async def list_decisions(
    session: AsyncSession,
    *,
    principal: Principal,
    outcome: str | None,
    participant_id: str | None,
    region: str | None,
    page: PageRequest,
) -> Page[DecisionRead]:
    after = read_cursor(page, ("at", datetime), ("id", str))
    prefix, possible = scoped_region_prefix(principal, region)
    if not possible:
        return keyset_page([], page, key=_decision_key, item=DecisionRead.model_validate)
    rows = await queries.list_decisions(
        session, outcome=outcome, participant_id=participant_id, region_prefix=prefix, after=after, limit=page.limit
    )
    await record_audit(
        session,
        actor=principal,
        action="graduation.decisions.listed",
        subject_type="decision",
        subject_id=None,
        purpose="graduation",
        details={"filters": {"outcome": outcome, "participant_id": participant_id, "region": prefix}},
    )
    return keyset_page(rows, page, key=_decision_key, item=DecisionRead.model_validate)


async def read_decision(session: AsyncSession, *, decision_id: str, principal: Principal) -> Decision:
    decision = await queries.get_decision(session, decision_id)
    if decision is None or not within_unit(principal, decision.region_code):
        raise not_found("decision", decision_id)
    await record_audit(
        session,
        actor=principal,
        action="graduation.decision.read",
        subject_type="participant",
        subject_id=decision.participant_id,
        purpose="graduation",
        details={"decision_id": decision.id},
    )
    return decision


async def read_appeal(session: AsyncSession, *, appeal_id: str, principal: Principal) -> Appeal:
    appeal = await queries.get_appeal(session, appeal_id)
    if appeal is None or not within_unit(principal, appeal.region_code):
        raise not_found("appeal", appeal_id)
    await record_audit(
        session,
        actor=principal,
        action="graduation.appeal.read",
        subject_type="participant",
        subject_id=appeal.participant_id,
        purpose="graduation",
        details={"appeal_id": appeal.id},
    )
    return appeal


# ------------------------------------------------------------------ verification and decision


async def verify_assessment(
    session: AsyncSession, *, assessment_id: str, body: VerificationCreate, principal: Principal, clock: Clock
) -> Assessment:
    now = clock.now()
    assessment = await read_assessment(session, assessment_id=assessment_id, principal=principal, for_update=True)
    if assessment.status != "current":
        raise Problem(
            409,
            "Assessment superseded",
            "a newer Monev result replaced this assessment; verify the current one",
            type_="assessment_superseded",
            current_id=assessment.superseded_by_assessment_id,
        )
    if assessment.verified_at is not None:
        raise Problem(409, "Already verified", "this assessment was verified already", type_="already_verified")
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
        details={"assessment_id": assessment.id, "evidence_checked": body.evidence_checked},
    )
    return assessment


def _mentoring_until(effective: date, graduation_settings: GraduationSettings) -> date:
    until = add_duration(effective, graduation_settings.mentoring_period)
    return until.date() if isinstance(until, datetime) else until


async def decide(
    session: AsyncSession,
    *,
    assessment_id: str,
    body: DecisionCreate,
    principal: Principal,
    clock: Clock,
    settings: Settings,
    graduation_settings: GraduationSettings,
) -> Decision:
    now = clock.now()
    assessment = await read_assessment(session, assessment_id=assessment_id, principal=principal, for_update=True)
    if assessment.status != "current":
        raise Problem(
            409,
            "Assessment superseded",
            "a newer Monev result replaced this assessment; decide on the current one",
            type_="assessment_superseded",
            current_id=assessment.superseded_by_assessment_id,
        )
    earlier = await queries.decisions_for_assessment(session, assessment.id)
    final = [d for d in earlier if d.outcome in ("approved", "rejected") and d.reversed_at is None]
    if final:
        raise Problem(
            409, "Already decided", "this assessment has a decision", type_="already_decided", existing_id=final[0].id
        )
    if assessment.verified_by is not None and assessment.verified_by == principal.subject:
        raise Problem(
            403,
            "Four-eyes rule",
            "the person who verified an assessment may not also decide it",
            type_="four_eyes",
        )
    effective: date | None = None
    mentoring_until: date | None = None
    if body.decision == "approve":
        if assessment.verified_at is None:
            raise Problem(
                409,
                "Verification required",
                "an assessment is verified before it is approved",
                type_="verification_required",
            )
        if not assessment.evidence_checked:
            raise Problem(
                409,
                "Evidence not checked",
                "the verifier did not confirm the field evidence; it cannot be approved",
                type_="evidence_not_checked",
            )
        if body.kind is None:
            raise field_error(
                "kind", "required_to_approve", "approving needs a kind: sejahtera_mandiri, alamiah or paksa"
            )
        if body.kind == "sejahtera_mandiri":
            if assessment.outcome != "ready":
                raise Problem(
                    409,
                    "Assessment not ready",
                    f"the assessment outcome is {assessment.outcome}; sejahtera mandiri needs ready",
                    type_="assessment_not_ready",
                )
            policy = await queries.get_policy(session, assessment.policy_id)
            wanted = bool(policy and policy.criteria.get("voluntary_statement_required_for_sejahtera_mandiri"))
            if wanted and not assessment.voluntary_exit_statement:
                raise Problem(
                    409,
                    "Voluntary statement missing",
                    "the policy of this assessment needs the family's voluntary exit statement for sejahtera mandiri",
                    type_="voluntary_statement_missing",
                )
        effective = body.effective_date or business_date(now, settings.business_timezone)
        mentoring_until = _mentoring_until(effective, graduation_settings)
    outcome = {"approve": "approved", "reject": "rejected", "defer": "deferred"}[body.decision]
    decision = Decision(
        id=new_id(),
        assessment_id=assessment.id,
        participant_id=assessment.participant_id,
        outcome=outcome,
        graduated=outcome == "approved",
        kind=body.kind,
        reason=body.reason,
        effective_date=effective,
        mentoring_until=mentoring_until,
        decided_by=principal.subject,
        decided_at=now,
        region_code=assessment.region_code,
        centre_id=assessment.centre_id,
        business_field=assessment.business_field,
    )
    session.add(decision)
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action=f"graduation.decision.{outcome}",
        subject_type="participant",
        subject_id=assessment.participant_id,
        purpose="graduation",
        details={"decision_id": decision.id, "assessment_id": assessment.id, "kind": body.kind},
    )
    await _emit_decided(session, decision, now)
    return decision


async def _emit_decided(session: AsyncSession, decision: Decision, now: datetime) -> None:
    await emit(
        session,
        "graduation.decided",
        GraduationDecided(
            decision_id=decision.id,
            participant_id=decision.participant_id,
            assessment_id=decision.assessment_id,
            outcome=decision.outcome,  # type: ignore[arg-type]
            graduated=decision.graduated,
            kind=decision.kind,  # type: ignore[arg-type]
            effective_date=decision.effective_date,
            mentoring_until=decision.mentoring_until,
            supersedes_decision_id=decision.supersedes_decision_id,
            decided_at=decision.decided_at,
        ),
        subject=decision.participant_id,
        time=now,
    )


# ------------------------------------------------------------------ appeals


def _appealed(appeal: Appeal) -> GraduationAppealed:
    return GraduationAppealed(
        appeal_id=appeal.id,
        decision_id=appeal.decision_id,
        participant_id=appeal.participant_id,
        status=appeal.status,  # type: ignore[arg-type]
        filed_at=appeal.filed_at,
        decided_at=appeal.decided_at,
    )


async def file_appeal(
    session: AsyncSession,
    *,
    decision_id: str,
    body: AppealCreate,
    principal: Principal,
    clock: Clock,
    graduation_settings: GraduationSettings,
) -> Appeal:
    now = clock.now()
    decision = await queries.get_decision(session, decision_id, for_update=True)
    if decision is None or not within_unit(principal, decision.region_code):
        raise not_found("decision", decision_id)
    if decision.outcome == "reversed" or decision.reversed_at is not None:
        raise Problem(409, "Not appealable", "this decision was already reversed", type_="not_appealable")
    window = graduation_settings.appeal_window
    closes = add_duration(decision.decided_at, window)
    if now > closes:
        raise Problem(
            409,
            "Appeal window closed",
            f"objections to this decision were accepted until {closes.isoformat()} ({window})",
            type_="appeal_window_closed",
        )
    existing = await queries.appeals_for_decision(session, decision.id)
    if existing:
        raise Problem(
            409,
            "Appeal exists",
            "this decision already has an appeal",
            type_="appeal_exists",
            existing_id=existing[0].id,
        )
    appeal = Appeal(
        id=new_id(),
        decision_id=decision.id,
        participant_id=decision.participant_id,
        region_code=decision.region_code,
        grounds=body.grounds,
        filed_by=principal.subject,
        filed_at=now,
    )
    session.add(appeal)
    await session.flush()
    await record_audit(
        session,
        actor=principal,
        action="graduation.appeal.filed",
        subject_type="participant",
        subject_id=decision.participant_id,
        purpose="graduation",
        details={"appeal_id": appeal.id, "decision_id": decision.id},
    )
    await emit(session, "graduation.appealed", _appealed(appeal), subject=appeal.participant_id, time=now)
    return appeal


async def decide_appeal(
    session: AsyncSession,
    *,
    appeal_id: str,
    body: AppealDecisionCreate,
    principal: Principal,
    clock: Clock,
    settings: Settings,
) -> Appeal:
    now = clock.now()
    appeal = await queries.get_appeal(session, appeal_id, for_update=True)
    if appeal is None or not within_unit(principal, appeal.region_code):
        raise not_found("appeal", appeal_id)
    if appeal.status != "filed":
        raise Problem(409, "Appeal already decided", f"this appeal was {appeal.status}", type_="appeal_already_decided")
    original = await queries.get_decision(session, appeal.decision_id, for_update=True)
    if original is None:  # pragma: no cover - appeals reference decisions that are never deleted
        raise not_found("decision", appeal.decision_id)
    if original.decided_by == principal.subject:
        raise Problem(
            403,
            "Four-eyes rule",
            "an appeal is decided by an approver other than the one who made the original decision",
            type_="four_eyes",
        )
    appeal.decided_by = principal.subject
    appeal.decided_at = now
    appeal.resolution_reason = body.reason
    if body.resolution == "reverse":
        appeal.status = "reversed"
        reversal = Decision(
            id=new_id(),
            assessment_id=original.assessment_id,
            participant_id=original.participant_id,
            outcome="reversed",
            graduated=False,
            kind=original.kind,
            reason=body.reason,
            effective_date=business_date(now, settings.business_timezone),
            decided_by=principal.subject,
            decided_at=now,
            region_code=original.region_code,
            centre_id=original.centre_id,
            business_field=original.business_field,
            supersedes_decision_id=original.id,
        )
        original.reversed_at = now
        original.reversed_by_appeal_id = appeal.id
        appeal.reversal_decision_id = reversal.id
        session.add(reversal)
        await session.flush()
        await _emit_decided(session, reversal, now)
    else:
        appeal.status = "upheld"
        await session.flush()
    await record_audit(
        session,
        actor=principal,
        action=f"graduation.appeal.{appeal.status}",
        subject_type="participant",
        subject_id=appeal.participant_id,
        purpose="graduation",
        details={"appeal_id": appeal.id, "decision_id": original.id, "reversal_id": appeal.reversal_decision_id},
    )
    await emit(session, "graduation.appealed", _appealed(appeal), subject=appeal.participant_id, time=now)
    return appeal


# ------------------------------------------------------------------ statistics


async def statistics(
    session: AsyncSession,
    *,
    principal: Principal,
    as_of: date,
    group_by: str | None,
    region: str | None,
    region_digits: int,
    settings: Settings,
) -> StatisticsRead:
    cutoff = end_of_business_day(as_of, settings.business_timezone)
    prefix, possible = scoped_region_prefix(principal, region)
    rows = (
        await queries.statistics(
            session, cutoff=cutoff, group_by=group_by, region_prefix=prefix, region_digits=region_digits
        )
        if possible
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
