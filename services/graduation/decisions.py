"""Decisions on an assessment (approve, reject, defer; four eyes: never by its verifier) and their
reads; `graduation.decided` announces each, reversals included."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, list_region_prefix
from pena.audit import audit_subjects, record_audit
from pena.auth import Principal
from pena.clock import Clock, business_date
from pena.contracts.graduation import GraduationDecided
from pena.durations import add_duration
from pena.ids import new_id
from pena.outbox import emit
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, field_error
from pena.settings import Settings
from services.graduation import queries
from services.graduation.assessments import read_assessment
from services.graduation.models import Decision
from services.graduation.policy import mentoring_follow_ups
from services.graduation.reads import audit_read, reached
from services.graduation.schemas import DecisionCommand, DecisionRead
from services.graduation.settings import GraduationSettings


def _decision_key(decision: Decision) -> dict[str, Any]:
    return {"at": decision.decided_at.isoformat(), "id": decision.id}


async def list_decisions(
    session: AsyncSession,
    *,
    principal: Principal,
    reach: Reach,
    outcome: str | None,
    participant_id: str | None,
    region: str | None,
    page: PageRequest,
) -> Page[DecisionRead]:
    after = read_cursor(page, ("at", datetime), ("id", str))
    prefix = list_region_prefix(reach, region)
    if prefix is None:
        return keyset_page([], page, key=_decision_key, item=DecisionRead.model_validate)
    rows = await queries.list_decisions(
        session, outcome=outcome, participant_id=participant_id, region_prefix=prefix, after=after, limit=page.limit
    )
    await audit_subjects(  # one audit row per decision shown
        session,
        principal,
        "graduation.decisions.listed",
        "decision",
        [d.id for d in rows[: page.limit]],
        "graduation",
        details={"filters": {"outcome": outcome, "participant_id": participant_id, "region": prefix}},
    )
    return keyset_page(rows, page, key=_decision_key, item=DecisionRead.model_validate)


async def read_decision(session: AsyncSession, *, decision_id: str, principal: Principal, reach: Reach) -> Decision:
    decision = reached(await queries.get_decision(session, decision_id), reach, kind="decision", ident=decision_id)
    await audit_read(session, principal, decision, kind="decision")
    return decision


def _mentoring_until(effective: date, graduation_settings: GraduationSettings) -> date:
    until = add_duration(effective, graduation_settings.mentoring_period)
    return until.date() if isinstance(until, datetime) else until


async def decide(
    session: AsyncSession,
    *,
    assessment_id: str,
    body: DecisionCommand,
    principal: Principal,
    reach: Reach,
    clock: Clock,
    settings: Settings,
    graduation_settings: GraduationSettings,
) -> Decision:
    now = clock.now()
    assessment = await read_assessment(session, assessment_id=assessment_id, reach=reach, for_update=True)
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
    if assessment.reverification_required:
        # a decision on it was reversed on appeal: the same evidence may not simply be decided again
        raise Problem(
            409,
            "Reassessment required",
            "a decision on this assessment was reversed on appeal; a new decision needs a new verification"
            " of the evidence or a newer Monev result (a new assessment)",
            type_="reassessment_required",
            reversed_decision_ids=[d.id for d in earlier if d.reversed_at is not None],
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
    follow_ups: list[str] = []
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
        policy = await queries.get_policy(session, assessment.policy_id)
        if body.kind == "sejahtera_mandiri":
            if assessment.outcome != "ready":
                raise Problem(
                    409,
                    "Assessment not ready",
                    f"the assessment outcome is {assessment.outcome}; sejahtera mandiri needs ready",
                    type_="assessment_not_ready",
                )
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
        # the mentoring visits are policy data: those of the policy version the assessment applied
        follow_ups = mentoring_follow_ups(policy.criteria if policy else {})
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
        mentoring_follow_ups=follow_ups,
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
    await emit_decided(session, decision, now)
    return decision


async def emit_decided(session: AsyncSession, decision: Decision, now: datetime) -> None:
    """graduation.decided, with the family (household id, KK token) from the participant read model:
    a payment system keyed by family acts on it without joining other events."""
    family = await queries.participant_view(session, decision.participant_id)
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
            mentoring_follow_ups=decision.mentoring_follow_ups,
            supersedes_decision_id=decision.supersedes_decision_id,
            household_id=family.household_id if family else None,
            kk_token=family.kk_token if family else None,
            decided_at=decision.decided_at,
        ),
        subject=decision.participant_id,
        time=now,
    )
