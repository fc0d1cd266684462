"""How a participant is shown: identity data decrypted, NIK and KK masked for callers without
participants:read_nik, and the non-personal facts events carry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from functools import lru_cache
from typing import Any

from pena.auth import Principal
from pena.crypto import FieldCipher, mask_nik
from pena.settings import Settings
from services.participants.models import Participant
from services.participants.schemas import ParticipantCreate

PROFILE_FIELDS = ("address", "phone", "business_description", "potential_notes")


def sealed_profile(cipher: Any, profile: dict[str, Any]) -> str | None:
    kept = {k: v for k, v in profile.items() if v is not None}
    return cipher.encrypt(json.dumps(kept, ensure_ascii=False)) if kept else None


@lru_cache(maxsize=4)
def cipher_for(key_b64: str) -> FieldCipher:
    return FieldCipher(key_b64)


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
    record = {name: getattr(participant, name) for name in _SHOWN_COLUMNS}
    return _shown(record, decrypted(participant, settings), principal)


def new_view(values: Mapping[str, Any], data: ParticipantCreate, *, principal: Principal) -> dict[str, Any]:
    """`view` of a participant just registered, from its column values and the validated input they
    were encrypted from (nothing decrypted again)."""
    personal = {
        **{name: getattr(data, name) for name in PROFILE_FIELDS},
        "nik": data.nik,
        "kk_number": data.kk_number,
        "full_name": data.full_name,
        "birth_date": data.birth_date,
        "baseline_monthly_income": data.baseline_monthly_income,
    }
    return _shown(values, personal, principal)


_SHOWN_COLUMNS = (
    "id",
    "sex",
    "birth_year",
    "region_code",
    "business_field",
    "assistance_programmes",
    "dtsen_decile",
    "household_size",
    "status",
    "version",
    "flagged",
    "possible_duplicate_of",
    "created_at",
    "updated_at",
    "erased_at",
    "household_id",
    "consent_purpose",
    "consent_given_on",
    "consent_recorded_by",
)


def _shown(record: Mapping[str, Any], personal: dict[str, Any], principal: Principal) -> dict[str, Any]:
    full = principal.has("participants:read_nik")
    for field in ("nik", "kk_number"):
        if personal[field] and not full:
            personal[field] = mask_nik(personal[field])
    return {
        "id": record["id"],
        **personal,
        "sex": record["sex"],
        "birth_year": record["birth_year"],
        "region_code": record["region_code"],
        "business_field": record["business_field"],
        "assistance_programmes": record["assistance_programmes"],
        "dtsen_decile": record["dtsen_decile"],
        "household_size": record["household_size"],
        "status": record["status"],
        "version": record["version"],
        "flagged": record["flagged"] if principal.is_admin else False,
        "possible_duplicate_of": record["possible_duplicate_of"] if principal.is_admin else None,
        "created_at": record["created_at"],
        "updated_at": record["updated_at"],
        "erased_at": record.get("erased_at"),
        "household_id": record.get("household_id"),
        "consent": (
            {
                "purpose": record["consent_purpose"],
                "given_on": record["consent_given_on"],
                "recorded_by": record["consent_recorded_by"],
            }
            if record["consent_purpose"]
            else None
        ),
    }


FACT_FIELDS = ("region_code", "sex", "birth_year", "business_field", "dtsen_decile", "household_size", "status")
FAMILY_FIELDS = ("household_id", "kk_token")  # the family (KPM): its registry id and keyed KK token


def facts_of(row: Mapping[str, Any], income: int | None) -> dict[str, Any]:
    """The non-personal facts events carry, from a participant's column values and its plain income."""
    return {
        **{name: row[name] for name in FACT_FIELDS},
        **{name: row.get(name) for name in FAMILY_FIELDS},
        "assistance_programmes": list(row["assistance_programmes"]),
        "baseline_monthly_income": income,
    }


def facts(participant: Participant, settings: Settings) -> dict[str, Any]:
    income = participant.baseline_income_enc
    return facts_of(
        {name: getattr(participant, name) for name in (*FACT_FIELDS, *FAMILY_FIELDS, "assistance_programmes")},
        int(cipher_for(settings.field_encryption_key).decrypt(income)) if income else None,
    )
