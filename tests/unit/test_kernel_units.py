"""Pure kernel functions: calendar arithmetic, envelope, redaction, settings, tokens, crypto."""

from __future__ import annotations

import contextlib
import io
import logging
import uuid
from datetime import UTC, date, datetime, timedelta, timezone

import pytest
from pydantic import ValidationError

from pena.clock import ManualClock
from pena.consumer import PoisonEvent, event_context, parse_event, validate_payload
from pena.contracts import BY_NAME, CONTRACTS, MonevScheduled
from pena.crypto import FieldCipher, keyed_hex, mask_nik, nik_token
from pena.durations import add_duration, parse_duration
from pena.envelope import CloudEvent, make_event
from pena.ids import new_id
from pena.logging_setup import configure_logging, redact
from pena.outbox import event_row, outbox_row
from pena.settings import Settings

WIB = timezone(timedelta(hours=7))


@pytest.mark.parametrize(
    ("start", "duration", "expected"),
    [
        (date(2022, 11, 30), "P3M", date(2023, 2, 28)),
        (date(2023, 11, 30), "P3M", date(2024, 2, 29)),  # leap year
        (date(2026, 1, 31), "P3M", date(2026, 4, 30)),
        (date(2026, 8, 31), "P6M", date(2027, 2, 28)),
        (date(2026, 3, 15), "P12M", date(2027, 3, 15)),
        (date(2026, 3, 15), "P30D", date(2026, 4, 14)),
    ],
)
def test_calendar_month_arithmetic_clamps_to_month_end(start, duration, expected) -> None:
    assert add_duration(start, duration) == expected


def test_bad_durations_are_refused() -> None:
    for text in ("3 months", "P", "PT", "P1.5M", ""):
        with pytest.raises(ValueError, match="not an ISO-8601 duration"):
            parse_duration(text)


def test_manual_clock_moves_by_calendar_months() -> None:
    clock = ManualClock(datetime(2025, 11, 30, 12, tzinfo=UTC))
    assert clock.advance("P3M") == datetime(2026, 2, 28, 12, tzinfo=UTC)


def test_every_contract_has_a_versioned_type_and_its_owner_topic() -> None:
    assert len({c.type for c in CONTRACTS}) == len(CONTRACTS)
    for c in CONTRACTS:
        assert c.type.startswith("id.go.kemensos.pena.")
        assert c.type.endswith(".v1")
        assert c.service in ("participants", "training", "monev", "graduation")
        fields = set(c.payload.model_fields)
        assert not fields & {"nik", "kk_number", "full_name", "name"}, c.name


def test_envelope_round_trip_and_validation() -> None:
    contract = BY_NAME["training.dropped"]
    payload = contract.payload(
        participant_id="p",
        batch_id="b",
        centre_id="c",
        reason_code="withdrawn",
        attendance_rate=0.5,
        dropped_at=datetime(2026, 1, 1, tzinfo=UTC),
    )
    event = make_event(
        event_type=contract.type,
        source="/pena/training",
        subject="p",
        time=datetime(2026, 1, 1, tzinfo=UTC),
        data=payload.model_dump(mode="json"),
    )
    again = parse_event(event.to_bytes())
    assert again == event
    assert again.specversion == "1.0"
    assert validate_payload(again) == payload
    with pytest.raises(PoisonEvent, match="malformed"):
        parse_event(b'{"id": ""}')
    bad = event.model_copy(update={"data": {"participant_id": "p"}})
    with pytest.raises(PoisonEvent, match="invalid training.dropped payload"):
        validate_payload(bad)


@pytest.mark.parametrize("subject", ["p-1", None])
@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 3, 4, 5, 6, 7, 89, tzinfo=UTC),
        datetime(2026, 3, 4, 12, tzinfo=WIB),
    ],
)
@pytest.mark.parametrize("in_context", [False, True])
def test_outbox_rows_hold_exactly_the_cloud_event_models_dump(subject, moment, in_context) -> None:
    """`event_row` builds the stored envelope without a model per event (`make_envelope`): it must be
    exactly what the CloudEvent model gives (`model_dump(mode="json", exclude_none=True)`), with and
    without a subject, context ids and a traceparent, and the returned event must equal it."""
    payload = MonevScheduled(
        task_id="t-1",
        participant_id="p-1",
        batch_id="b-1",
        wave="P3M",
        training_completed_at=moment,
        due_at=moment,
        kind="follow_up",
    )
    context = CloudEvent(
        id="cause",
        source="/pena/training",
        type="t",
        time=moment,
        correlationid="corr",
        traceparent="00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    with event_context(context) if in_context else contextlib.nullcontext():
        event, row = outbox_row("monev.scheduled", payload, subject=subject, time=moment, key="k")
        batch_row = event_row("monev.scheduled", payload, subject=subject, time=moment, key="k")
    batch_model = CloudEvent.model_validate(batch_row["envelope"])
    assert batch_row["envelope"] == batch_model.model_dump(mode="json", exclude_none=True)
    assert list(batch_row["envelope"]) == list(batch_model.model_dump(mode="json", exclude_none=True))
    assert batch_row["event_id"] == batch_model.id != row["event_id"]
    assert {k: v for k, v in batch_row["envelope"].items() if k != "id"} == {
        k: v for k, v in row["envelope"].items() if k != "id"
    }
    model = CloudEvent.model_validate(row["envelope"])
    assert row["envelope"] == model.model_dump(mode="json", exclude_none=True)
    assert list(row["envelope"]) == list(model.model_dump(mode="json", exclude_none=True))
    assert event == model
    assert (row["event_id"], row["event_name"], row["message_key"]) == (model.id, "monev.scheduled", "k")
    assert validate_payload(model) == payload
    expected_context = ("corr", "cause", context.traceparent) if in_context else (None, None, None)
    assert (model.correlationid, model.causationid, model.traceparent) == expected_context


def test_new_ids_are_random_version_4_uuids_in_canonical_form() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert (str(parsed), parsed.version, parsed.variant) == (text, 4, uuid.RFC_4122)


def test_log_lines_never_show_a_16_digit_number() -> None:
    assert redact({"a": "nik 1371014508900001 here", "b": ["3171234567890123"]}) == {
        "a": "nik [REDACTED-16] here",
        "b": ["[REDACTED-16]"],
    }
    stream = io.StringIO()
    configure_logging("INFO", json_output=True)
    root = logging.getLogger()
    root.handlers[0].stream = stream  # type: ignore[attr-defined]
    logging.getLogger("test").warning("saw %s", "1371014508900001", extra={"kk": "1371010101200001"})
    out = stream.getvalue()
    assert "REDACTED-16" in out
    assert "1371014508900001" not in out
    assert "1371010101200001" not in out


def test_production_refuses_dev_secrets_and_the_movable_clock() -> None:
    with pytest.raises(ValidationError, match="PENA_NIK_HMAC_KEY"):
        Settings(environment="production")
    production = {
        "environment": "production",
        "nik_hmac_key": "3q2+7wAAAAB0ZXN0LWtleS0xMjM0NTY3ODkwYWJjZGVmZ2hpamtsbW5vcHFy",
        "jwks_url": "https://sso.kemensos.go.id/jwks",
        "jwt_issuer": "https://sso.kemensos.go.id",
        "database_url": "postgresql+asyncpg://pena:pw@db.internal:5432/pena_{service}",
        "field_encryption_key": "kfxhbZI6o2ZVkIMATpxhng3kErR+leZ3KIZR00yPR8s=",
    }
    ok = Settings(**production)  # type: ignore[arg-type]
    assert ok.environment == "production"
    with pytest.raises(ValidationError, match="movable clock"):
        Settings(**production, allow_clock_control=True)  # type: ignore[arg-type]


def test_nik_token_mask_and_field_cipher() -> None:
    nik = "1371014508900001"
    assert nik_token(nik, "k1") == nik_token(nik, "k1") != nik_token(nik, "k2")
    assert nik not in nik_token(nik, "k1")
    assert mask_nik(nik) == "1371**********01"  # regency and last two: the birth-date digits stay hidden
    cipher = FieldCipher(Settings().field_encryption_key)
    sealed = cipher.encrypt(nik)
    assert nik not in sealed
    assert cipher.decrypt(sealed) == nik
    assert cipher.encrypt(nik) != sealed  # fresh nonce per value


def test_keyed_tokens_are_byte_identical_to_the_stored_ones() -> None:
    """The tokens are computed with hmac.digest now; values stored by the former hmac.new(...).hexdigest()
    (the literals below, computed with it) must still match, or lookups and the unique NIK index break."""
    import hashlib
    import hmac

    from services.participants.identity import identity_hash, kk_token

    assert nik_token(" 3271014501900001 ", "k1") == ("13da2325e892188c76132a8b1d52661bd17cce563551d1f40bdef3f67f2f13ba")
    assert kk_token("3271010101100001", "k1") == "da770432dc14d0254721c35b55e7376ac5a88939aeb2db29f5a3f70e972cdde1"
    assert identity_hash("Siti  Aminah", date(1990, 1, 5), "k1") == (
        "6eeba29e85a4c1fd5abcd5c8b218f0935d1dddfd7c2d177ed786c23f279d0774"
    )
    for key, message in (("k1", b""), ("kunci rahasia", "NIK ✓".encode()), ("x" * 100, b"y" * 1000)):
        assert keyed_hex(key, message) == hmac.new(key.encode(), message, hashlib.sha256).hexdigest()


def test_the_first_consumer_of_a_process_freezes_the_start_up_heap_once() -> None:
    import gc

    from pena import kafka

    kafka.settle_heap()
    frozen = gc.get_freeze_count()
    assert frozen > 0
    kafka.settle_heap()  # once per process: a second consumer changes nothing
    assert gc.get_freeze_count() == frozen
