"""The outbox row's envelope (pena.outbox.outbox_row builds it as a dict, without a second pydantic
model): the same JSON as the CloudEvent model gives, valid as a CloudEvent, its data valid against
the event's contract."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from pena.context import causation_id_var, correlation_id_var
from pena.contracts import BY_NAME, ParticipantRegistered
from pena.envelope import CloudEvent
from pena.outbox import outbox_row


def registered(at: datetime) -> ParticipantRegistered:
    return ParticipantRegistered(
        participant_id="p-1",
        version=1,
        nik_token="t" * 64,
        registered_at=at,
        sex="F",
        birth_year=1990,
        region_code="1371011001",
        business_field="kuliner",
        assistance_programmes=["PKH"],
        dtsen_decile=2,
        household_size=4,
        status="candidate",
        baseline_monthly_income=None,
    )


def test_the_envelope_is_the_cloud_event_models_json_and_keeps_the_contract() -> None:
    contract = BY_NAME["participant.registered"]
    for at in (
        datetime(2026, 1, 5, 1, 2, 3, 456, tzinfo=UTC),
        datetime(2026, 1, 5, tzinfo=timezone(timedelta(hours=7))),
    ):
        for correlation in (None, "corr-1"):
            token = correlation_id_var.set(correlation)
            cause = causation_id_var.set("cause-1" if correlation else None)
            try:
                event, row = outbox_row("participant.registered", registered(at), subject="p-1", time=at)
            finally:
                correlation_id_var.reset(token)
                causation_id_var.reset(cause)
            envelope = row["envelope"]
            checked = CloudEvent.model_validate(envelope)  # valid as an envelope
            assert envelope == checked.model_dump(mode="json", exclude_none=True)  # and in its JSON form
            assert envelope == CloudEvent.model_validate(event.model_dump()).model_dump(mode="json", exclude_none=True)
            assert contract.payload.model_validate(envelope["data"]) == registered(at)  # the contract holds
            assert envelope["type"] == contract.type
            assert envelope["source"] == "/pena/participants"
            assert envelope["dataschema"] == contract.dataschema
            assert envelope.get("correlationid") == correlation
            assert envelope.get("causationid") == ("cause-1" if correlation else None)
            assert "traceparent" not in envelope  # no trace here: absent, not null
            assert envelope["data"]["baseline_monthly_income"] is None  # data keeps its nulls
            assert row["event_id"] == envelope["id"] == event.id
            assert row["message_key"] == "p-1"
            assert row["event_name"] == "participant.registered"
            assert event.time == at
