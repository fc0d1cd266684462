"""Appeals (keberatan): filed within the appeal window on behalf of the family, then upheld or
reversed by another approver; a reversal is a new `reversed` decision."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach
from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock, business_date
from pena.contracts.graduation import GraduationAppealed
from pena.durations import add_duration
from pena.ids import new_id
from pena.outbox import emit
from pena.problems import Problem, not_found
from pena.settings import Settings
from services.graduation import queries
from services.graduation.decisions import emit_decided
from services.graduation.models import Appeal, Assessment, Decision
from services.graduation.reads import audit_read, reached
from services.graduation.schemas import AppealCreate, AppealDecisionCommand
from services.graduation.settings import GraduationSettings


async def read_appeal(session: AsyncSession, *, appeal_id: str, principal: Principal, reach: Reach) -> Appeal:
    appeal = reached(await queries.get_appeal(session, appeal_id), reach, kind="appeal", ident=appeal_id)
    await audit_read(session, principal, appeal, kind="appeal")
    return appeal


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
    reach: Reach,
    clock: Clock,
    graduation_settings: GraduationSettings,
) -> Appeal:
    now = clock.now()
    found = await queries.get_decision(session, decision_id, for_update=True)
    decision = reached(found, reach, kind="decision", ident=decision_id)
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


# who may not decide an appeal, in the order checked, and why (issue 13: the appeal is a second look
# by someone who took no part in the decision or the objection)
DECIDER_CONFLICTS = {
    "filer": "the person who filed an appeal may not also decide it",
    "original_approver": "an appeal is decided by someone other than the approver of the original decision",
    "verifier": "the verifier of the assessment behind the decision may not decide its appeal",
}


def _refuse_conflicted_decider(
    principal: Principal, appeal: Appeal, original: Decision, assessment: Assessment | None
) -> None:
    """403 `appeal_decider_conflict` (naming the `conflict`) when the caller filed the appeal, made the
    original decision or verified the assessment it was made on."""
    took_part = {
        "filer": appeal.filed_by,
        "original_approver": original.decided_by,
        "verifier": assessment.verified_by if assessment is not None else None,
    }
    for conflict, subject in took_part.items():
        if subject is not None and subject == principal.subject:
            raise Problem(
                403,
                "Appeal decider conflict",
                DECIDER_CONFLICTS[conflict],
                type_="appeal_decider_conflict",
                conflict=conflict,
            )


async def decide_appeal(
    session: AsyncSession,
    *,
    appeal_id: str,
    body: AppealDecisionCommand,
    principal: Principal,
    reach: Reach,
    clock: Clock,
    settings: Settings,
) -> Appeal:
    now = clock.now()
    appeal = reached(
        await queries.get_appeal(session, appeal_id, for_update=True), reach, kind="appeal", ident=appeal_id
    )
    if appeal.status != "filed":
        raise Problem(409, "Appeal already decided", f"this appeal was {appeal.status}", type_="appeal_already_decided")
    original = await queries.get_decision(session, appeal.decision_id, for_update=True)
    if original is None:  # pragma: no cover - appeals reference decisions that are never deleted
        raise not_found("decision", appeal.decision_id)
    assessment = await queries.get_assessment(session, original.assessment_id, for_update=True)
    _refuse_conflicted_decider(principal, appeal, original, assessment)
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
        if assessment is not None:
            assessment.reverification_required = True
        session.add(reversal)
        await session.flush()
        await emit_decided(session, reversal, now)
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
