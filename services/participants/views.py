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
        "household_id": participant.household_id,
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
