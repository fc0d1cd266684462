"""Families in graduation: the participant read model keeps the household and KK token the registry
announces, graduation.decided carries them; erasure (participant.status_changed to erased) drops the
family's figures and free text from assessments, decisions and appeals, keeping outcomes, kinds, dates
and region, also for a Monev result that arrives after the erasure."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from pena.contracts import ParticipantRegistered, ParticipantStatusChanged
from pena.tables import audit_log
from services.graduation import queries
from services.graduation.erasure import ERASED_TEXT
from services.graduation.models import Appeal, Assessment, Decision
from tests.graduation.conftest import Env
from tests.graduation.support import monev_result, publish_monev
from tests.graduation.test_decisions import approve, ready_assessment, verify
from tests.support import NIK_TOKEN, PADANG_VILLAGE, Announcement, in_service, outbox_data, publish

HOUSEHOLD = "household-1"
KK_TOKEN = "k" * 64
AT = datetime(2026, 1, 1, tzinfo=UTC)


async def _registered(env: Env, participant_id: str) -> None:
    payload = ParticipantRegistered(
        participant_id=participant_id,
        version=1,
        nik_token=NIK_TOKEN,
        registered_at=AT,
        region_code=PADANG_VILLAGE,
        status="active",
        household_id=HOUSEHOLD,
        kk_token=KK_TOKEN,
    )
    await publish(env.runtime, Announcement("participant.registered", payload, participant_id, AT))


async def _erased(env: Env, participant_id: str) -> None:
    payload = ParticipantStatusChanged(
        participant_id=participant_id,
        version=3,
        from_status="graduated",
        to_status="erased",
        reason_code="erasure_requested",
        household_id=HOUSEHOLD,
        kk_token=None,
        changed_at=AT,
    )
    await publish(env.runtime, Announcement("participant.status_changed", payload, participant_id, AT))


async def _rows(env: Env, model: Any) -> list[Any]:
    async def read(session):
        return list((await session.execute(select(model))).scalars().all())

    return await in_service(env.runtime, "graduation", read)


async def test_the_read_model_keeps_the_family_and_decided_carries_it(family_env: Env, auth: Any) -> None:
    await _registered(family_env, "p-fam")
    view = await in_service(family_env.runtime, "graduation", lambda s: queries.participant_view(s, "p-fam"))
    assert view is not None
    assert (view.household_id, view.kk_token) == (HOUSEHOLD, KK_TOKEN)
    assessment_id = await ready_assessment(family_env, auth, "p-fam")
    await verify(family_env, auth, assessment_id)
    decided = await approve(family_env, auth, assessment_id)
    assert decided.status_code == 201, decided.text
    [event] = await outbox_data(family_env.runtime, "graduation", "graduation.decided")
    assert (event["household_id"], event["kk_token"], event["graduated"]) == (HOUSEHOLD, KK_TOKEN, True)


async def test_erasure_drops_figures_and_free_text_and_keeps_outcomes(family_env: Env, auth: Any) -> None:
    await _registered(family_env, "p-fam")
    assessment_id = await ready_assessment(family_env, auth, "p-fam")
    await verify(family_env, auth, assessment_id)
    decided = await approve(family_env, auth, assessment_id)
    assert decided.status_code == 201, decided.text
    filed = await family_env.client.post(
        f"/v1/graduation/decisions/{decided.json()['id']}/appeals",
        json={"grounds": "Pak Budi's stall closed after the flood"},
        headers=auth("facilitator", sub="fac-1", unit="13"),
    )
    assert filed.status_code == 201, filed.text
    [before] = await _rows(family_env, Assessment)
    assert any(c["value"] is not None for c in before.criteria)

    await _erased(family_env, "p-fam")

    [assessment] = await _rows(family_env, Assessment)
    assert assessment.verification_notes is None
    assert [c["value"] for c in assessment.criteria] == [None] * len(before.criteria)
    assert [(c["criterion"], c["threshold"], c["passed"]) for c in assessment.criteria] == [
        (c["criterion"], c["threshold"], c["passed"]) for c in before.criteria
    ]
    assert (assessment.outcome, assessment.visit_date, assessment.region_code) == (
        before.outcome,
        before.visit_date,
        before.region_code,
    )
    [decision] = await _rows(family_env, Decision)
    assert decision.reason == ERASED_TEXT
    assert (decision.outcome, decision.kind, decision.effective_date is not None) == (
        "approved",
        "sejahtera_mandiri",
        True,
    )
    [appeal] = await _rows(family_env, Appeal)
    assert (appeal.grounds, appeal.resolution_reason, appeal.status) == (ERASED_TEXT, None, "filed")
    view = await in_service(family_env.runtime, "graduation", lambda s: queries.participant_view(s, "p-fam"))
    assert view is not None
    assert (view.status, view.kk_token, view.household_id) == ("erased", None, HOUSEHOLD)
    # what the API shows keeps no figure or text of the family
    shown = await family_env.client.get(f"/v1/graduation/assessments/{assessment_id}", headers=auth("admin"))
    assert shown.status_code == 200
    assert "3500000" not in shown.text
    assert "receipts" not in shown.text

    # the erasure again: nothing changes, one audit entry
    await _erased(family_env, "p-fam")

    async def audits(session):
        query = select(audit_log).where(audit_log.c.action == "graduation.participant.erased")
        return list((await session.execute(query)).all())

    assert len(await in_service(family_env.runtime, "graduation", audits)) == 1


async def test_a_monev_result_arriving_after_the_erasure_keeps_no_figures(family_env: Env) -> None:
    await _registered(family_env, "p-late")
    await _erased(family_env, "p-late")
    await publish_monev(family_env.runtime, monev_result("p-late", income=3_500_000))
    [assessment] = await _rows(family_env, Assessment)
    assert assessment.outcome in ("ready", "not_ready", "cannot_assess")
    assert all(c["value"] is None for c in assessment.criteria)
