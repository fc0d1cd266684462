"""Corrections of a participant's registry facts (PATCH): If-Match, a reason, the same identity rules
as registration for what changed, history, audit and participant.updated."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock, business_today
from pena.contracts import ParticipantUpdated
from pena.outbox import emit
from pena.problems import Problem
from pena.settings import Settings
from services.participants import households
from services.participants.etag import check_if_match
from services.participants.history import record_change
from services.participants.identity import Error, identity_hash, kk_errors, kk_token, nik_errors
from services.participants.models import Participant
from services.participants.reads import load_visible
from services.participants.regions import known_regions
from services.participants.schemas import ParticipantUpdate
from services.participants.validation import birth_date_errors, region_errors, validation_problem
from services.participants.views import PROFILE_FIELDS, cipher_for, decrypted, facts, sealed_profile


def not_erased(participant: Participant) -> None:
    if participant.status == "erased":
        raise Problem(409, "Erased", "this participant's personal data was erased", type_="erased")


REQUIRED_ON_UPDATE = ("kk_number", "full_name", "birth_date", "sex", "region_code")


async def update_participant(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    clock: Clock,
    participant_id: str,
    if_match: str | None,
    data: ParticipantUpdate,
) -> Participant:
    participant = await load_visible(session, principal=principal, participant_id=participant_id, for_update=True)
    check_if_match(participant, if_match)
    not_erased(participant)
    sent = {name: getattr(data, name) for name in data.model_fields_set if name != "reason"}
    nulls = [name for name in REQUIRED_ON_UPDATE if name in sent and sent[name] is None]
    if nulls:
        raise validation_problem(
            [{"field": n, "rule": "not_nullable", "message": f"{n} cannot be null"} for n in nulls]
        )
    current = {**decrypted(participant, settings), **_plain_fields(participant)}
    changed = sorted(name for name, value in sent.items() if _normalised(value) != _normalised(current.get(name)))
    if not changed:
        return participant
    merged = {**current, **{name: sent[name] for name in changed}}
    known = await known_regions(session)
    today = business_today(clock, settings.business_timezone)
    errors: list[Error] = []
    if {"birth_date", "sex"} & set(changed) and merged["nik"]:
        errors += nik_errors(merged["nik"], birth_date=merged["birth_date"], sex=merged["sex"], known=known)
        errors += birth_date_errors(merged["birth_date"], today)
    if "kk_number" in changed:
        errors += kk_errors(merged["kk_number"], today=today, known=known)
    if "region_code" in changed:
        errors += region_errors(merged["region_code"], known)
    if errors:
        raise validation_problem(errors)
    now = clock.now()
    if "kk_number" in changed:
        await _move_household(
            session, participant, merged["kk_number"], principal=principal, settings=settings, now=now
        )
    _apply(participant, merged, changed, settings)
    participant.version += 1
    participant.updated_at = now
    session.add(participant)
    await record_change(
        session,
        participant,
        action="updated",
        actor=principal.subject,
        at=now,
        changed_fields=changed,
        reason=data.reason,
    )
    await record_audit(
        session,
        actor=principal,
        action="participant.update",
        subject_type="participant",
        subject_id=participant.id,
        details={"changed_fields": changed, "version": participant.version},
    )
    await emit(
        session,
        "participant.updated",
        ParticipantUpdated(
            participant_id=participant.id,
            version=participant.version,
            changed_fields=changed,
            updated_at=now,
            **facts(participant, settings),
        ),
        subject=participant.id,
        time=now,
    )
    return participant


async def _move_household(
    session: AsyncSession,
    participant: Participant,
    kk_number: str,
    *,
    principal: Principal,
    settings: Settings,
    now: datetime,
) -> None:
    """A new KK number links the participant to that family's household (created if new, locked); a
    participant in the programme is refused (409 household_limit) when that family is full."""
    token = kk_token(kk_number, settings.nik_hmac_key)
    household_id = (await households.claim(session, [token], now))[token]
    if participant.status in households.ACTIVE_STATUSES:
        await households.check_room(session, household_id=household_id, actor=principal, excluding=participant.id)
    participant.household_id = household_id


def _plain_fields(participant: Participant) -> dict[str, Any]:
    return {
        "sex": participant.sex,
        "region_code": participant.region_code,
        "business_field": participant.business_field,
        "assistance_programmes": participant.assistance_programmes,
        "dtsen_decile": participant.dtsen_decile,
        "household_size": participant.household_size,
    }


def _normalised(value: Any) -> Any:
    return sorted(value) if isinstance(value, list) else value


def _apply(participant: Participant, merged: dict[str, Any], changed: list[str], settings: Settings) -> None:
    cipher = cipher_for(settings.field_encryption_key)
    for name in changed:
        value = merged[name]
        if name == "kk_number":
            participant.kk_enc = cipher.encrypt(value)
            participant.kk_token = kk_token(value, settings.nik_hmac_key)
        elif name == "full_name":
            participant.name_enc = cipher.encrypt(value)
        elif name == "birth_date":
            participant.birth_date_enc = cipher.encrypt(value.isoformat())
            participant.birth_year = value.year
        elif name == "baseline_monthly_income":
            participant.baseline_income_enc = cipher.encrypt(str(value)) if value is not None else None
        elif name == "assistance_programmes":
            participant.assistance_programmes = list(dict.fromkeys(value))
        elif name in PROFILE_FIELDS:
            pass  # sealed together below
        else:
            setattr(participant, name, value)
    if set(PROFILE_FIELDS) & set(changed):
        participant.profile_enc = sealed_profile(cipher, {name: merged.get(name) for name in PROFILE_FIELDS})
    if {"full_name", "birth_date"} & set(changed):
        participant.identity_hash = identity_hash(merged["full_name"], merged["birth_date"], settings.nik_hmac_key)
