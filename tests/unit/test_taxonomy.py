"""The business-field taxonomy (pena/reference/taxonomy.py), no database: one versioned file, one rule
that training, participants and monev share, the roll-up of sub-fields in Python and in SQL."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from sqlalchemy import column
from sqlalchemy.dialects import postgresql

from pena.reference import taxonomy as tx
from services.monev.schemas import SurveyCreate
from services.participants.schemas import ParticipantUpdate
from services.training import reference


def test_the_file_holds_fields_and_sub_fields_with_a_version_and_owner() -> None:
    data = tx.taxonomy()
    assert (data.version, data.owner) == ("2026.1", "training")
    assert data.entries["makanan_berat"].parent == "kuliner"
    assert data.entries["konveksi"].parent == "fashion_menjahit"
    assert data.entries["kuliner"].parent is None
    assert len(tx.codes()) == 9


def test_one_rule_for_every_value() -> None:
    assert tx.business_field_errors("makanan_berat") == []
    assert tx.business_field_errors(None) == []
    [error] = tx.business_field_errors("Kuliner")  # codes are exact
    assert (error["field"], error["rule"]) == ("business_field", "unknown_business_field")


def test_roll_up_in_python_and_in_sql() -> None:
    assert tx.roll_up("makanan_berat") == "kuliner"
    assert tx.roll_up("kuliner") == "kuliner"
    assert tx.roll_up("free text of an old survey") == "free text of an old survey"
    assert tx.roll_up(None) is None
    sql = str(tx.rolled_up(column("bf")).compile(dialect=postgresql.dialect()))
    assert sql == (
        "CASE WHEN (bf = 'makanan_berat') THEN 'kuliner' WHEN (bf = 'konveksi') THEN 'fashion_menjahit' ELSE bf END"
    )


def test_training_serves_the_same_list_and_the_services_share_the_rule() -> None:
    assert tx.taxonomy().version == reference.BUSINESS_FIELDS_VERSION
    assert list(reference.BUSINESS_FIELDS) == tx.codes()
    assert reference.BUSINESS_FIELDS["makanan_berat"] == ("Makanan berat (cooked meals)", "kuliner")
    with pytest.raises(ValidationError) as participants_error:
        ParticipantUpdate.model_validate({"reason": "typo fixed", "business_field": "astrologi"})
    with pytest.raises(ValidationError) as survey_error:
        SurveyCreate.model_validate({"business_field": "astrologi"})
    rule = [e["type"] for e in participants_error.value.errors() if e["loc"] == ("business_field",)]
    assert rule == ["unknown_business_field"]
    assert ("business_field",) in [e["loc"] for e in survey_error.value.errors() if e["type"] == rule[0]]
    assert ParticipantUpdate.model_validate({"reason": "new stall", "business_field": "konveksi"}).business_field == (
        "konveksi"
    )
