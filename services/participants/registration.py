"""Registration: one participant (`register_new`, the API's hot path, in one statement on the raw pool;
`register` in a session: with an Idempotency-Key and wherever the hot path cannot decide alone) or a
chunk of a bulk import (`register_many`), all built from the same row, history, audit and event
functions. Identity data is stored encrypted and found by keyed tokens; the NIK token is unique (409
with the holder's id)."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import covers_region, reach_of
from pena.audit import audit_row, record_audits
from pena.auth import Principal
from pena.clock import Clock, business_today
from pena.contracts import ParticipantRegistered
from pena.crypto import nik_token
from pena.db import Database
from pena.idempotency import claim_key, store_response
from pena.ids import new_id
from pena.outbox import emit_rows, outbox_row, outbox_rows
from pena.problems import field_error
from pena.settings import Settings
from services.participants import households, queries, reads
from services.participants.history import actor_name, change_values
from services.participants.identity import Error, identity_hash, kk_token
from services.participants.models import Participant
from services.participants.regions import known_regions
from services.participants.schemas import ParticipantCreate
from services.participants.validation import (
    creation_errors,
    creation_region_codes,
    duplicate_problem,
    validation_problem,
)
from services.participants.views import PROFILE_FIELDS, cipher_for, facts_of, sealed_profile


def idempotency_fingerprint(data: ParticipantCreate, settings: Settings) -> dict[str, Any]:
    """The request as the idempotency check sees it: identity numbers replaced by their keyed tokens,
    the name by a keyed hash, so the stored fingerprint cannot be brute-forced back to a NIK."""
    body = data.model_dump(mode="json")
    body["nik"] = nik_token(data.nik, settings.nik_hmac_key)
    body["kk_number"] = kk_token(data.kk_number, settings.nik_hmac_key)
    body["full_name"] = identity_hash(data.full_name, data.birth_date, settings.nik_hmac_key)
    return body


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
        "profile_enc": sealed_profile(cipher, {name: getattr(data, name) for name in PROFILE_FIELDS}),
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
        **possible_duplicate(twin_id),
        "created_by": actor_name(actor),
        "created_at": now,
        "updated_at": now,
    }


def possible_duplicate(twin_id: str | None) -> dict[str, Any]:
    """The columns naming a possible duplicate (another NIK, same name and birth date): a participant
    is flagged for review exactly when it has one."""
    return {"possible_duplicate_of": twin_id, "flagged": twin_id is not None}


def registration_change(values: Mapping[str, Any]) -> dict[str, Any]:
    """The history row of a registration (from `participant_values`)."""
    return change_values(
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


def registration_payload(values: Mapping[str, Any], *, income: int | None) -> ParticipantRegistered:
    """participant.registered: pseudonymous token and coarse facts, no identity data."""
    return ParticipantRegistered(
        participant_id=values["id"],
        version=values["version"],
        nik_token=values["nik_token"],
        registered_at=values["created_at"],
        **facts_of(values, income),
    )


def registration_event(values: Mapping[str, Any], *, income: int | None) -> dict[str, Any]:
    """The participant.registered outbox row."""
    payload = registration_payload(values, income=income)
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
    if outside_reach(actor, data):
        raise field_error("region_code", "outside_reach", OUTSIDE_REACH, status=403)
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
        holder = await queries.participant_by_id(session, checks.holder_id)
        raise duplicate_problem(_shown_id(actor, holder))
    now = clock.now()
    values = participant_values(
        data, settings=settings, token=token, identity=identity, twin_id=checks.twin_id, actor=actor, now=now
    )
    # the family: created or found, and locked until commit, so a concurrent registration of another
    # member waits here and then counts this one (the per-KPM limit holds under concurrency)
    values["household_id"] = (await households.claim(session, [values["kk_token"]], now))[values["kk_token"]]
    await households.check_room(session, household_id=values["household_id"], actor=actor, nik_token=token)
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
        raise duplicate_problem(_shown_id(actor, winner))
    return Participant(**values)


async def register_new(
    db: Database,
    *,
    actor: Principal | None,
    settings: Settings,
    clock: Clock,
    data: ParticipantCreate,
    purpose: str = "registration",
) -> dict[str, Any]:
    """`register` without a session (the API's registration without an Idempotency-Key): the same
    refusals, rows and event, in ONE statement on the database's raw pool (its own implicit
    transaction) when the input is valid as far as Python can tell; returns the stored column values
    (`possible_duplicate_of` and `flagged` as the statement found them). Input that Python already
    refuses with every asked region code taken as known, a NIK taken by a concurrent registration, and
    a family (KK) the registry already knows go through `register` in a transaction of their own (it
    looks them up, locks the household and applies the per-KPM limit, and answers). The statement
    creates the household of a new family itself: its INSERT ... ON CONFLICT DO NOTHING waits for a
    concurrent registration of the same family and then writes nothing, so that one goes the session
    way and counts the first member (the limit holds under concurrency)."""
    if outside_reach(actor, data):
        raise field_error("region_code", "outside_reach", OUTSIDE_REACH, status=403)
    codes = creation_region_codes(data)
    today = business_today(clock, settings.business_timezone)
    if creation_errors(data, known=frozenset(codes), today=today):
        return await _register_in_session(db, actor=actor, settings=settings, clock=clock, data=data, purpose=purpose)
    token = nik_token(data.nik, settings.nik_hmac_key)
    identity = identity_hash(data.full_name, data.birth_date, settings.nik_hmac_key)
    values = participant_values(
        data, settings=settings, token=token, identity=identity, twin_id=None, actor=actor, now=clock.now()
    )
    values["household_id"] = new_id()  # the family's household, when the statement creates it
    done = await queries.register_in_one_statement(
        await db.raw_pool(),
        region_codes=codes,
        nik_token=token,
        identity_hash=identity,
        values=values,
        change=registration_change(values),
        audit=registration_audit(values, actor=actor, purpose=purpose),
        event=registration_event(values, income=data.baseline_monthly_income),
    )
    if done.inserted:
        values["possible_duplicate_of"] = done.twin_id
        values["flagged"] = done.twin_id is not None
        return values
    errors = creation_errors(data, known=done.known_regions, today=today)
    if errors:
        raise validation_problem(errors)
    if done.holder_id is not None:
        raise duplicate_problem(done.holder_id if _may_name(actor, done.holder_region) else None)
    # nothing written although the NIK was free in the statement's snapshot: the family is known
    # already (its household exists: the session path locks it and applies the per-KPM limit), or a
    # concurrent registration of the NIK committed first (the session path finds and names the winner)
    return await _register_in_session(db, actor=actor, settings=settings, clock=clock, data=data, purpose=purpose)


async def register_with_key(
    db: Database,
    *,
    actor: Principal,
    settings: Settings,
    clock: Clock,
    data: ParticipantCreate,
    client_id: str,
    key: str,
) -> tuple[Participant, int]:
    """`register` under an Idempotency-Key, in one transaction with the key's row: a repeated key
    answers the first registration (its stored status), as the caller may see it now."""
    async with db.transaction() as session:
        # the idempotency table keeps a fingerprint and the new id only: no NIK, not even hashed plainly
        stored = await claim_key(session, client_id=client_id, key=key, body=idempotency_fingerprint(data, settings))
        if stored:
            first = await reads.load_visible(session, principal=actor, participant_id=str(stored.body["id"]))
            return first, stored.status
        participant = await register(session, actor=actor, settings=settings, clock=clock, data=data)
        await store_response(session, client_id=client_id, key=key, status=201, body={"id": participant.id})
        return participant, 201


async def _register_in_session(
    db: Database, *, actor: Principal | None, settings: Settings, clock: Clock, data: ParticipantCreate, purpose: str
) -> dict[str, Any]:
    async with db.transaction() as session:
        participant = await register(session, actor=actor, settings=settings, clock=clock, data=data, purpose=purpose)
    return participant.model_dump()


OUTSIDE_REACH = "region_code lies outside the regions your token reaches"


def outside_reach(actor: Principal | None, data: ParticipantCreate) -> bool:
    """A writer registers only participants of the regions its token reaches (the kernel's reach)."""
    return actor is not None and not covers_region(reach_of(actor), data.region_code)


def _shown_id(actor: Principal | None, holder: Participant | None) -> str | None:
    """The id a 409 names: only of a record the caller may see (a holder outside its reach stays
    unnamed, as a read of it would answer 404)."""
    if holder is None or not _may_name(actor, holder.region_code):
        return None
    return holder.id


def _may_name(actor: Principal | None, region_code: str | None) -> bool:
    return actor is None or covers_region(reach_of(actor), region_code)


@dataclass
class BulkOutcome:
    created: int = 0
    duplicates: int = 0
    errors: dict[int, list[Error]] = dataclasses.field(default_factory=dict)  # input index -> refusals
    # identity hash -> [(NIK token, id)] of the rows registered by earlier `register_prepared` calls
    # with this outcome (the parts of one import chunk), in row order: the possible duplicates they give
    registered: dict[str, list[tuple[str, str]]] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class Preparation:
    """What preparing registrations needs besides their input (`prepare_registration`): no session,
    no context variables, picklable, so a worker process (pena.parallel) can do the per-row work."""

    settings: Settings
    actor: Principal | None
    known: frozenset[str]
    today: date
    now: datetime


# a registration ready to be stored: (input index or row number, NIK token, identity hash, column
# values without household and possible duplicate, plain income): a tuple, cheap to send between processes
Prepared = tuple[int, str, str, dict[str, Any], int | None]


def prepare_registration(index: int, data: ParticipantCreate, preparation: Preparation) -> Prepared | list[Error]:
    """The database-free part of a registration: the creation rules and the writer's reach (the
    refusals, as `register` makes them), else the keyed tokens and the encrypted column values."""
    errors = creation_errors(data, known=preparation.known, today=preparation.today)
    if outside_reach(preparation.actor, data):
        errors.append({"field": "region_code", "rule": "outside_reach", "message": OUTSIDE_REACH})
    if errors:
        return errors
    settings = preparation.settings
    token = nik_token(data.nik, settings.nik_hmac_key)
    identity = identity_hash(data.full_name, data.birth_date, settings.nik_hmac_key)
    values = participant_values(
        data,
        settings=settings,
        token=token,
        identity=identity,
        twin_id=None,
        actor=preparation.actor,
        now=preparation.now,
    )
    return index, token, identity, values, data.baseline_monthly_income


async def preparation_for(
    session: AsyncSession, *, actor: Principal | None, settings: Settings, clock: Clock
) -> Preparation:
    return Preparation(
        settings=settings,
        actor=actor,
        known=await known_regions(session),
        today=business_today(clock, settings.business_timezone),
        now=clock.now(),
    )


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
    preparation = await preparation_for(session, actor=actor, settings=settings, clock=clock)
    outcome = BulkOutcome()
    ready: list[Prepared] = []
    for index, data in enumerate(items):
        prepared = prepare_registration(index, data, preparation)
        if isinstance(prepared, list):
            outcome.errors[index] = prepared
        else:
            ready.append(prepared)
    return await register_prepared(session, preparation=preparation, prepared=ready, purpose=purpose, outcome=outcome)


async def register_prepared(
    session: AsyncSession,
    *,
    preparation: Preparation,
    prepared: list[Prepared],
    purpose: str,
    outcome: BulkOutcome | None = None,
) -> BulkOutcome:
    """The database part of `register_many` for registrations prepared (`prepare_registration`, in
    input order, possibly in worker processes): duplicates, possible duplicates, the households and
    their limit, then one INSERT per table. Refusals go into `outcome.errors` under the prepared index."""
    outcome = outcome or BulkOutcome()
    actor, now = preparation.actor, preparation.now
    candidates: dict[str, Prepared] = {}  # NIK token -> the first row with it
    for row in prepared:
        if row[1] in candidates:
            outcome.duplicates += 1
        else:
            candidates[row[1]] = row
    taken = await queries.existing_nik_tokens(session, list(candidates))
    outcome.duplicates += len(taken)
    fresh = [row for token, row in candidates.items() if token not in taken]
    # possible duplicates: the oldest stored participant with the same name and birth date and
    # another NIK, else an earlier row of this batch (as if the rows had been registered one by one)
    holders = await queries.identity_holders(session, list({identity for _, _, identity, _, _ in fresh}))
    if outcome.registered:  # an earlier part's rows: after the older holders, in row order (not by id)
        ours = {pid for found in outcome.registered.values() for _, pid in found}
        for identity in {identity for _, _, identity, _, _ in fresh} & outcome.registered.keys():
            older = [holder for holder in holders.get(identity, ()) if holder[1] not in ours]
            holders[identity] = older + outcome.registered[identity]
    # the families of the chunk, locked until commit; a row whose family is full (counting the rows
    # before it) is refused like an invalid one, with the rule household_limit on kk_number
    family_ids = await households.claim(session, [values["kk_token"] for _, _, _, values, _ in fresh], now)
    in_programme = await households.active_tokens(session, list(family_ids.values()))
    allowed = households.limit()
    rows: list[tuple[dict[str, Any], int | None]] = []
    for index, token, identity, values, income in fresh:
        household_id = family_ids[values["kk_token"]]
        members = in_programme.setdefault(household_id, set())
        if token not in members and len(members) >= allowed:
            outcome.errors[index] = [
                {"field": "kk_number", "rule": households.LIMIT_RULE, "message": households.limit_message(allowed)}
            ]
            continue
        members.add(token)
        twin_id = next((pid for other, pid in holders.get(identity, ()) if other != token), None)
        values.update(possible_duplicate(twin_id))
        values["household_id"] = household_id
        holders.setdefault(identity, []).append((token, values["id"]))
        outcome.registered.setdefault(identity, []).append((token, values["id"]))
        rows.append((values, income))
    inserted = await queries.insert_new_participants(session, [values for values, _ in rows])
    # a registration of the same NIK that committed since the lookup (or is committing) wins the
    # unique index: ON CONFLICT DO NOTHING leaves this row out, and it counts as a duplicate (a later
    # row flagged against the left-out one keeps that id in possible_duplicate_of: a review hint only)
    created = [(values, income) for values, income in rows if values["id"] in inserted]
    outcome.duplicates += len(rows) - len(created)
    outcome.created += len(created)
    await queries.insert_changes(session, [registration_change(values) for values, _ in created])
    await record_audits(session, [registration_audit(values, actor=actor, purpose=purpose) for values, _ in created])
    events = [
        (registration_payload(values, income=income), values["id"], values["created_at"]) for values, income in created
    ]
    await emit_rows(session, outbox_rows("participant.registered", events))
    return outcome
