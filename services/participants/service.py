"""Use cases of the participants service: keyword-only async functions taking the session; they never
commit (the request, consumer or scheduler transaction does). Every read of personal data and every
change is audited; every change bumps `version` and announces itself through the outbox."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import audit_row, record_audit, record_audits
from pena.auth import Principal
from pena.clock import Clock, business_today
from pena.consumer import RetryLater
from pena.contracts import GraduationDecided, ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.crypto import FieldCipher, mask_nik, nik_token
from pena.ids import new_id
from pena.outbox import emit, emit_rows, outbox_row
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.problems import Problem, field_error, not_found
from pena.settings import Settings
from services.participants import queries
from services.participants.identity import Error, identity_hash, kk_errors, kk_token, nik_errors
from services.participants.models import Participant, ParticipantChange
from services.participants.regions import known_regions, region_known
from services.participants.schemas import ParticipantCreate, ParticipantSummary, ParticipantUpdate, StatusChange

# candidate -> active -> graduated | exited; erased only through erasure; graduated -> active only
# when an appeal reverses a graduation (the graduation.decided handler)
ALLOWED_TRANSITIONS: dict[str, set[str]] = {
    "candidate": {"active", "exited"},
    "active": {"graduated", "exited"},
    "graduated": {"exited"},
    "exited": set(),
    "erased": set(),
}
ALL_UNITS = ""  # the visible-prefix value for callers who see every region
PROFILE_FIELDS = ("address", "phone", "business_description", "potential_notes")


def _sealed_profile(cipher: Any, profile: dict[str, Any]) -> str | None:
    kept = {k: v for k, v in profile.items() if v is not None}
    return cipher.encrypt(json.dumps(kept, ensure_ascii=False)) if kept else None


@lru_cache(maxsize=4)
def cipher_for(key_b64: str) -> FieldCipher:
    return FieldCipher(key_b64)


# ------------------------------------------------------------------ access


def visible_prefix(principal: Principal) -> str | None:
    """ "" = every region (admin, integrator); a digit prefix = the caller's unit; None = nothing."""
    if principal.is_admin or principal.has_role("integrator"):
        return ALL_UNITS
    unit = (principal.unit or "").strip()
    return unit if unit.isdigit() and len(unit) <= 10 else None


def can_see(principal: Principal, participant: Participant) -> bool:
    prefix = visible_prefix(principal)
    return prefix is not None and participant.region_code.startswith(prefix)


async def load_visible(
    session: AsyncSession, *, principal: Principal, participant_id: str, for_update: bool = False
) -> Participant:
    """Out-of-unit records answer 404 exactly like missing ones: existence does not leak."""
    participant = await queries.participant_by_id(session, participant_id, for_update=for_update)
    if participant is None or not can_see(principal, participant):
        raise not_found("participant", participant_id)
    return participant


def etag(participant: Participant) -> str:
    return f'"{participant.version}"'


def check_if_match(participant: Participant, if_match: str | None) -> None:
    if not if_match:
        raise Problem(
            428,
            "Precondition required",
            "send If-Match with the ETag of the record you read",
            type_="if-match-required",
        )
    candidates = {tag.strip().removeprefix("W/") for tag in if_match.split(",")}
    if "*" not in candidates and etag(participant) not in candidates:
        raise Problem(
            412,
            "Precondition failed",
            "the record changed since you read it; read it again and retry",
            type_="etag-mismatch",
            current_version=participant.version,
        )


# ------------------------------------------------------------------ views


def decrypted(participant: Participant, settings: Settings) -> dict[str, Any]:
    cipher = cipher_for(settings.field_encryption_key)

    def open_(value: str | None) -> str | None:
        return cipher.decrypt(value) if value else None

    birth = open_(participant.birth_date_enc)
    income = open_(participant.baseline_income_enc)
    profile = json.loads(open_(participant.profile_enc) or "{}")
    return {
        **{name: profile.get(name) for name in PROFILE_FIELDS},
        "nik": open_(participant.nik_enc),
        "kk_number": open_(participant.kk_enc),
        "full_name": open_(participant.name_enc),
        "birth_date": date.fromisoformat(birth) if birth else None,
        "baseline_monthly_income": int(income) if income is not None else None,
    }


def view(participant: Participant, *, principal: Principal, settings: Settings) -> dict[str, Any]:
    """The record as this caller may see it: NIK and KK masked without participants:read_nik,
    duplicate review marks for admins only."""
    personal = decrypted(participant, settings)
    full = principal.has("participants:read_nik")
    for field in ("nik", "kk_number"):
        if personal[field] and not full:
            personal[field] = mask_nik(personal[field])
    return {
        "id": participant.id,
        **personal,
        "sex": participant.sex,
        "birth_year": participant.birth_year,
        "region_code": participant.region_code,
        "business_field": participant.business_field,
        "assistance_programmes": participant.assistance_programmes,
        "dtsen_decile": participant.dtsen_decile,
        "household_size": participant.household_size,
        "status": participant.status,
        "version": participant.version,
        "flagged": participant.flagged if principal.is_admin else False,
        "possible_duplicate_of": participant.possible_duplicate_of if principal.is_admin else None,
        "created_at": participant.created_at,
        "updated_at": participant.updated_at,
        "erased_at": participant.erased_at,
        "consent": (
            {
                "purpose": participant.consent_purpose,
                "given_on": participant.consent_given_on,
                "recorded_by": participant.consent_recorded_by,
            }
            if participant.consent_purpose
            else None
        ),
    }


FACT_FIELDS = ("region_code", "sex", "birth_year", "business_field", "dtsen_decile", "household_size", "status")


def _facts_of(row: Mapping[str, Any], income: int | None) -> dict[str, Any]:
    """The non-personal facts events carry, from a participant's column values and its plain income."""
    return {
        **{name: row[name] for name in FACT_FIELDS},
        "assistance_programmes": list(row["assistance_programmes"]),
        "baseline_monthly_income": income,
    }


def _facts(participant: Participant, settings: Settings) -> dict[str, Any]:
    income = participant.baseline_income_enc
    return _facts_of(
        {name: getattr(participant, name) for name in (*FACT_FIELDS, "assistance_programmes")},
        int(cipher_for(settings.field_encryption_key).decrypt(income)) if income else None,
    )


# ------------------------------------------------------------------ validation


def validation_problem(errors: list[Error]) -> Problem:
    fields = ", ".join(dict.fromkeys(e["field"] for e in errors))
    return Problem(422, "Validation failed", f"invalid input: {fields}", type_="validation", errors=errors)


def duplicate_problem(existing_id: str | None) -> Problem:
    return Problem(
        409,
        "Duplicate NIK",
        "a participant with this NIK is already registered",
        type_="duplicate-nik",
        existing_id=existing_id,
    )


def _birth_date_errors(birth_date: date, today: date) -> list[Error]:
    if birth_date > today:
        return [{"field": "birth_date", "rule": "not_in_future", "message": "birth_date lies in the future"}]
    if birth_date.year < 1900:
        return [{"field": "birth_date", "rule": "implausible", "message": "birth_date is before 1900"}]
    return []


def _region_errors(region_code: str, known: frozenset[str]) -> list[Error]:
    if region_known(region_code, known):
        return []
    return [
        {
            "field": "region_code",
            "rule": "unknown_region",
            "message": "province or regency (first 2/4 digits) is not in the region reference data",
        }
    ]


def creation_errors(data: ParticipantCreate, *, known: frozenset[str], today: date) -> list[Error]:
    return [
        *nik_errors(data.nik, birth_date=data.birth_date, sex=data.sex, known=known),
        *kk_errors(data.kk_number, today=today, known=known),
        *_birth_date_errors(data.birth_date, today),
        *_region_errors(data.region_code, known),
    ]


def creation_region_codes(data: ParticipantCreate) -> list[str]:
    """The region codes `creation_errors` looks up (provinces of NIK, KK and village, the village's
    regency): a registration loads these few, not the whole reference list."""
    return [data.nik[:2], data.kk_number[:2], data.region_code[:2], data.region_code[:4]]


# ------------------------------------------------------------------ registration


def idempotency_fingerprint(data: ParticipantCreate, settings: Settings) -> dict[str, Any]:
    """The request as the idempotency check sees it: identity numbers replaced by their keyed tokens,
    the name by a keyed hash, so the stored fingerprint cannot be brute-forced back to a NIK."""
    body = data.model_dump(mode="json")
    body["nik"] = nik_token(data.nik, settings.nik_hmac_key)
    body["kk_number"] = kk_token(data.kk_number, settings.nik_hmac_key)
    body["full_name"] = identity_hash(data.full_name, data.birth_date, settings.nik_hmac_key)
    return body


def _change_values(
    participant_id: str,
    version: int,
    *,
    action: str,
    actor: str,
    at: datetime,
    changed_fields: list[str] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "version": version,
        "action": action,
        "changed_fields": changed_fields or [],
        "from_status": from_status,
        "to_status": to_status,
        "reason_code": reason_code,
        "reason": reason,
        "actor": actor,
        "at": at,
    }


async def _record_change(
    session: AsyncSession,
    participant: Participant,
    *,
    action: str,
    actor: str,
    at: datetime,
    changed_fields: list[str] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
) -> None:
    values = _change_values(
        participant.id,
        participant.version,
        action=action,
        actor=actor,
        at=at,
        changed_fields=changed_fields,
        from_status=from_status,
        to_status=to_status,
        reason_code=reason_code,
        reason=reason,
    )
    session.add(ParticipantChange(**values))


def _actor_name(actor: Principal | None) -> str:
    return actor.subject if actor else "system"


def participant_values(
    data: ParticipantCreate,
    *,
    settings: Settings,
    token: str,
    identity: str,
    twin_id: str | None,
    actor: Principal | None,
    now: datetime,
) -> dict[str, Any]:
    """A new participant's column values (identity data encrypted) from validated input."""
    cipher = cipher_for(settings.field_encryption_key)
    income = data.baseline_monthly_income
    return {
        "id": new_id(),
        "nik_token": token,
        "kk_token": kk_token(data.kk_number, settings.nik_hmac_key),
        "identity_hash": identity,
        "nik_enc": cipher.encrypt(data.nik),
        "kk_enc": cipher.encrypt(data.kk_number),
        "name_enc": cipher.encrypt(data.full_name),
        "birth_date_enc": cipher.encrypt(data.birth_date.isoformat()),
        "baseline_income_enc": cipher.encrypt(str(income)) if income is not None else None,
        "profile_enc": _sealed_profile(cipher, {name: getattr(data, name) for name in PROFILE_FIELDS}),
        "consent_purpose": data.consent.purpose,
        "consent_given_on": data.consent.given_on,
        "consent_recorded_by": data.consent.recorded_by,
        "nik_region": data.nik[:6],
        "sex": data.sex,
        "birth_year": data.birth_date.year,
        "region_code": data.region_code,
        "business_field": data.business_field,
        "assistance_programmes": list(dict.fromkeys(data.assistance_programmes)),
        "dtsen_decile": data.dtsen_decile,
        "household_size": data.household_size,
        "status": data.status,
        "version": 1,
        "possible_duplicate_of": twin_id,
        "flagged": twin_id is not None,
        "created_by": _actor_name(actor),
        "created_at": now,
        "updated_at": now,
    }


def registration_change(values: Mapping[str, Any]) -> dict[str, Any]:
    """The history row of a registration (from `participant_values`)."""
    return _change_values(
        values["id"],
        values["version"],
        action="registered",
        actor=values["created_by"],
        at=values["created_at"],
        to_status=values["status"],
    )


def registration_audit(values: Mapping[str, Any], *, actor: Principal | None, purpose: str) -> dict[str, Any]:
    return audit_row(
        actor=actor,
        action="participant.register",
        subject_type="participant",
        subject_id=values["id"],
        purpose=purpose,
        details={"flagged_possible_duplicate": values["flagged"]},
    )


def registration_event(values: Mapping[str, Any], *, income: int | None) -> dict[str, Any]:
    """The participant.registered outbox row: pseudonymous token and coarse facts, no identity data."""
    payload = ParticipantRegistered(
        participant_id=values["id"],
        version=values["version"],
        nik_token=values["nik_token"],
        registered_at=values["created_at"],
        **_facts_of(values, income),
    )
    return outbox_row("participant.registered", payload, subject=values["id"], time=values["created_at"])[1]


async def register(
    session: AsyncSession,
    *,
    actor: Principal | None,
    settings: Settings,
    clock: Clock,
    data: ParticipantCreate,
    known: frozenset[str] | None = None,
    purpose: str = "registration",
) -> Participant:
    """Validates, dedupes by NIK token (409 with existing_id), flags a possible duplicate (same name and
    birth date, another NIK), stores encrypted identity data and announces participant.registered."""
    token = nik_token(data.nik, settings.nik_hmac_key)
    identity = identity_hash(data.full_name, data.birth_date, settings.nik_hmac_key)
    checks = await queries.registration_checks(
        session,
        region_codes=[] if known is not None else creation_region_codes(data),
        nik_token=token,
        identity_hash=identity,
    )
    known = known if known is not None else checks.known_regions
    errors = creation_errors(data, known=known, today=business_today(clock, settings.business_timezone))
    if errors:
        raise validation_problem(errors)
    if checks.holder_id is not None:
        raise duplicate_problem(checks.holder_id)
    now = clock.now()
    values = participant_values(
        data, settings=settings, token=token, identity=identity, twin_id=checks.twin_id, actor=actor, now=now
    )
    # the unique index decides a concurrent double registration: the loser's insert waits for the
    # winner's commit, writes nothing (no history, audit or event either), and the loser answers 409
    # naming the winner
    inserted = await queries.insert_if_new_nik(
        session,
        values,
        change=registration_change(values),
        audit=registration_audit(values, actor=actor, purpose=purpose),
        event=registration_event(values, income=data.baseline_monthly_income),
    )
    if not inserted:
        winner = await queries.participant_by_nik_token(session, token)
        raise duplicate_problem(winner.id if winner else None)
    return Participant(**values)


@dataclass
class BulkOutcome:
    created: int = 0
    duplicates: int = 0
    errors: dict[int, list[Error]] = dataclasses.field(default_factory=dict)  # input index -> refusals


async def register_many(
    session: AsyncSession,
    *,
    actor: Principal | None,
    settings: Settings,
    clock: Clock,
    items: list[ParticipantCreate],
    purpose: str,
) -> BulkOutcome:
    """register() for many participants at once (the bulk import): the same validation, duplicate
    rules, rows, history, audit and events, but one lookup per kind and one INSERT per table.
    A NIK already registered, or repeated in `items` (the first occurrence counts), is a duplicate."""
    outcome = BulkOutcome()
    known = await known_regions(session)
    today = business_today(clock, settings.business_timezone)
    candidates: dict[str, tuple[ParticipantCreate, str]] = {}  # NIK token -> (data, identity hash)
    for index, data in enumerate(items):
        errors = creation_errors(data, known=known, today=today)
        if errors:
            outcome.errors[index] = errors
            continue
        token = nik_token(data.nik, settings.nik_hmac_key)
        if token in candidates:
            outcome.duplicates += 1
            continue
        candidates[token] = (data, identity_hash(data.full_name, data.birth_date, settings.nik_hmac_key))
    taken = await queries.existing_nik_tokens(session, list(candidates))
    outcome.duplicates += len(taken)
    fresh = [(token, data, identity) for token, (data, identity) in candidates.items() if token not in taken]
    # possible duplicates: the oldest stored participant with the same name and birth date and
    # another NIK, else an earlier row of this batch (as if the rows had been registered one by one)
    holders = await queries.identity_holders(session, list({identity for _, _, identity in fresh}))
    now = clock.now()
    rows: list[tuple[dict[str, Any], int | None]] = []
    for token, data, identity in fresh:
        twin_id = next((pid for other, pid in holders.get(identity, ()) if other != token), None)
        values = participant_values(
            data, settings=settings, token=token, identity=identity, twin_id=twin_id, actor=actor, now=now
        )
        holders.setdefault(identity, []).append((token, values["id"]))
        rows.append((values, data.baseline_monthly_income))
    inserted = await queries.insert_new_participants(session, [values for values, _ in rows])
    # a registration of the same NIK that committed since the lookup (or is committing) wins the
    # unique index: ON CONFLICT DO NOTHING leaves this row out, and it counts as a duplicate (a later
    # row flagged against the left-out one keeps that id in possible_duplicate_of: a review hint only)
    created = [(values, income) for values, income in rows if values["id"] in inserted]
    outcome.duplicates += len(rows) - len(created)
    outcome.created = len(created)
    await queries.insert_changes(session, [registration_change(values) for values, _ in created])
    await record_audits(session, [registration_audit(values, actor=actor, purpose=purpose) for values, _ in created])
    await emit_rows(session, [registration_event(values, income=income) for values, income in created])
    return outcome


# ------------------------------------------------------------------ reads


async def get_participant(
    session: AsyncSession, *, principal: Principal, participant_id: str, purpose: str | None = None
) -> Participant:
    participant = await load_visible(session, principal=principal, participant_id=participant_id)
    await record_audit(
        session,
        actor=principal,
        action="participant.read",
        subject_type="participant",
        subject_id=participant.id,
        purpose=purpose,
        details={"full_nik": principal.has("participants:read_nik")},
    )
    return participant


async def lookup(
    session: AsyncSession, *, principal: Principal, settings: Settings, nik: str, purpose: str | None = None
) -> Participant:
    participant = await queries.participant_by_nik_token(session, nik_token(nik, settings.nik_hmac_key))
    found = participant is not None and can_see(principal, participant)
    await record_audit(
        session,
        actor=principal,
        action="participant.lookup",
        subject_type="participant",
        subject_id=participant.id if participant is not None and found else None,
        outcome="ok" if found else "not_found",
        purpose=purpose,
    )
    if participant is None or not found:
        raise Problem(404, "Not found", "no participant with this NIK (or it is outside your unit)", type_="not-found")
    return participant


async def list_participants(
    session: AsyncSession,
    *,
    principal: Principal,
    filters: queries.ParticipantFilter,
    after: tuple[datetime, str] | None,
    limit: int,
    action: str = "participant.list",
) -> list[Participant]:
    prefix = visible_prefix(principal)
    if filters.flagged is not None and not principal.is_admin:
        raise Problem(403, "Forbidden", "the duplicate review list is for admins", type_="forbidden")
    if prefix is None:
        rows: list[Participant] = []
    else:
        scoped = queries.ParticipantFilter(**{**filters.__dict__, "unit_prefix": prefix})
        rows = await queries.list_participants(session, filters=scoped, after=after, limit=limit)
    await record_audit(
        session,
        actor=principal,
        action=action,
        subject_type="participant",
        subject_id=None,
        details={"returned": min(len(rows), limit), "filters": {k: v for k, v in filters.__dict__.items() if v}},
    )
    return rows


async def participants_page(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    filters: queries.ParticipantFilter,
    page: PageRequest,
) -> Page[ParticipantSummary]:
    after = read_cursor(page, ("created_at", datetime), ("id", str))
    rows = await list_participants(session, principal=principal, filters=filters, after=after, limit=page.limit)
    return keyset_page(
        rows,
        page,
        key=lambda p: {"created_at": p.created_at.isoformat(), "id": p.id},
        item=lambda p: ParticipantSummary.model_validate(view(p, principal=principal, settings=settings)),
    )


async def history(session: AsyncSession, *, principal: Principal, participant_id: str) -> list[ParticipantChange]:
    participant = await load_visible(session, principal=principal, participant_id=participant_id)
    await record_audit(
        session, actor=principal, action="participant.history", subject_type="participant", subject_id=participant.id
    )
    return await queries.changes_of(session, participant.id)


# ------------------------------------------------------------------ changes


def _not_erased(participant: Participant) -> None:
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
    _not_erased(participant)
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
        errors += _birth_date_errors(merged["birth_date"], today)
    if "kk_number" in changed:
        errors += kk_errors(merged["kk_number"], today=today, known=known)
    if "region_code" in changed:
        errors += _region_errors(merged["region_code"], known)
    if errors:
        raise validation_problem(errors)
    _apply(participant, merged, changed, settings)
    now = clock.now()
    participant.version += 1
    participant.updated_at = now
    session.add(participant)
    await _record_change(
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
            **_facts(participant, settings),
        ),
        subject=participant.id,
        time=now,
    )
    return participant


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
        participant.profile_enc = _sealed_profile(cipher, {name: merged.get(name) for name in PROFILE_FIELDS})
    if {"full_name", "birth_date"} & set(changed):
        participant.identity_hash = identity_hash(merged["full_name"], merged["birth_date"], settings.nik_hmac_key)


async def _set_status(
    session: AsyncSession,
    participant: Participant,
    *,
    to_status: str,
    reason_code: str,
    reason: str | None,
    actor: Principal | None,
    settings: Settings,
    now: datetime,
) -> None:
    """Moves the status, bumps the version, records history and audit, announces status_changed."""
    from_status = participant.status
    participant.status = to_status
    participant.version += 1
    participant.updated_at = now
    session.add(participant)
    await _record_change(
        session,
        participant,
        action="status_changed",
        actor=_actor_name(actor),
        at=now,
        changed_fields=["status"],
        from_status=from_status,
        to_status=to_status,
        reason_code=reason_code,
        reason=reason,
    )
    await record_audit(
        session,
        actor=actor,
        action="participant.status",
        subject_type="participant",
        subject_id=participant.id,
        details={"from": from_status, "to": to_status, "reason_code": reason_code},
    )
    await emit(
        session,
        "participant.status_changed",
        ParticipantStatusChanged(
            participant_id=participant.id,
            version=participant.version,
            from_status=from_status,  # type: ignore[arg-type]
            to_status=to_status,  # type: ignore[arg-type]
            reason_code=reason_code,
            changed_at=now,
        ),
        subject=participant.id,
        time=now,
    )


async def change_status(
    session: AsyncSession,
    *,
    principal: Principal,
    settings: Settings,
    clock: Clock,
    participant_id: str,
    if_match: str | None,
    data: StatusChange,
) -> Participant:
    participant = await load_visible(session, principal=principal, participant_id=participant_id, for_update=True)
    if if_match:  # optional here: a status move is checked against the transition rules anyway
        check_if_match(participant, if_match)
    _not_erased(participant)
    if data.status not in ALLOWED_TRANSITIONS[participant.status]:
        raise field_error(
            "status",
            "transition_not_allowed",
            f"cannot move from {participant.status} to {data.status}",
            current_status=participant.status,
        )
    await _set_status(
        session,
        participant,
        to_status=data.status,
        reason_code=data.reason_code,
        reason=data.reason,
        actor=principal,
        settings=settings,
        now=clock.now(),
    )
    return participant


async def apply_graduation_decision(
    session: AsyncSession, *, decision: GraduationDecided, settings: Settings, clock: Clock
) -> None:
    """graduation.decided: a graduation sets the status graduated, an appeal that reverses one sets it
    back to active. A decision older than the newest one applied is ignored (out-of-order arrival); a
    decision for a participant not (yet) here is retried, then dead-lettered."""
    participant = await queries.participant_by_id(session, decision.participant_id, for_update=True)
    if participant is None:
        raise RetryLater("graduation decided for a participant this registry does not hold (yet)")
    if participant.status == "erased":
        return
    last = participant.graduation_decided_at
    if last is not None and decision.decided_at < last:
        return  # a newer decision was already applied
    if decision.graduated:
        target, reason_code = "graduated", "graduation_decided"
    elif decision.outcome == "reversed":
        target, reason_code = "active", "graduation_reversed"
    else:
        return  # rejected or deferred: the status stays as it is
    participant.graduation_decided_at = decision.decided_at
    session.add(participant)
    if participant.status == target:
        return
    await _set_status(
        session,
        participant,
        to_status=target,
        reason_code=reason_code,
        reason=f"graduation decision {decision.decision_id}",
        actor=None,
        settings=settings,
        now=clock.now(),
    )


async def erase(
    session: AsyncSession, *, principal: Principal, settings: Settings, clock: Clock, participant_id: str, reason: str
) -> Participant:
    """Right to erasure (UU PDP): blanks the personal fields and their tokens, keeps the non-personal
    facts (region, sex, birth year, field, programmes, decile, household size) for statistics."""
    participant = await load_visible(session, principal=principal, participant_id=participant_id, for_update=True)
    _not_erased(participant)
    blanked = [
        name
        for name, value in (
            ("nik", participant.nik_enc),
            ("kk_number", participant.kk_enc),
            ("full_name", participant.name_enc),
            ("birth_date", participant.birth_date_enc),
            ("baseline_monthly_income", participant.baseline_income_enc),
            ("profile", participant.profile_enc),
        )
        if value is not None
    ]
    participant.profile_enc = None
    participant.nik_enc = participant.kk_enc = participant.name_enc = None
    participant.birth_date_enc = participant.baseline_income_enc = None
    participant.nik_token = participant.kk_token = participant.identity_hash = None
    participant.possible_duplicate_of = None
    participant.flagged = False
    now = clock.now()
    participant.erased_at = now
    participant.nik_region = None
    await _set_status(
        session,
        participant,
        to_status="erased",
        reason_code="erasure_requested",
        reason=reason,
        actor=principal,
        settings=settings,
        now=now,
    )
    await _record_change(
        session, participant, action="erased", actor=principal.subject, at=now, changed_fields=blanked, reason=reason
    )
    return participant
