"""Validation of a new or changed participant beyond the request schema: the identity rules
(identity.py), birth date plausibility and known regions; the problems they answer with."""

from __future__ import annotations

from datetime import date

from pena.problems import Problem
from services.participants.identity import Error, kk_errors, nik_errors
from services.participants.regions import region_known
from services.participants.schemas import ParticipantCreate


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


def birth_date_errors(birth_date: date, today: date) -> list[Error]:
    if birth_date > today:
        return [{"field": "birth_date", "rule": "not_in_future", "message": "birth_date lies in the future"}]
    if birth_date.year < 1900:
        return [{"field": "birth_date", "rule": "implausible", "message": "birth_date is before 1900"}]
    return []


def region_errors(region_code: str, known: frozenset[str]) -> list[Error]:
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
        *birth_date_errors(data.birth_date, today),
        *region_errors(data.region_code, known),
    ]


def creation_region_codes(data: ParticipantCreate) -> list[str]:
    """The region codes `creation_errors` looks up (provinces of NIK, KK and village, the village's
    regency): a registration loads these few, not the whole reference list."""
    return [data.nik[:2], data.kk_number[:2], data.region_code[:2], data.region_code[:4]]
