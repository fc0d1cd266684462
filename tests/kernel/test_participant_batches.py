"""The participant.* batch handlers of training, monev and graduation on real PostgreSQL: a fetched run
of registered / updated / status_changed events, shuffled, repeated and out of order, applied set-based
(`deliver_records` with the service's BATCH_HANDLERS) leaves each read model exactly as the same events
delivered one by one (`deliver`): an older version never overwrites a newer one, also within one batch."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Table, select

from pena.consumer import Delivery, deliver, deliver_records
from pena.contracts import BY_NAME, ParticipantRegistered, ParticipantStatusChanged, ParticipantUpdated
from pena.definition import ServiceDefinition
from pena.envelope import make_event
from services.graduation.app import definition as graduation
from services.graduation.models import ParticipantView
from services.monev.app import definition as monev
from services.monev.models import BaselineParticipant
from services.training.app import definition as training
from services.training.models import EligibleParticipant

AT = datetime(2025, 11, 1, tzinfo=UTC)
REGIONS = ["1371011001", "1371011002", "3171010001"]
STATUSES = ["candidate", "active", "graduated", "exited"]


def _payload(kind: str, pid: str, version: int, rng: random.Random) -> Any:
    facts: dict[str, Any] = {
        "region_code": rng.choice(REGIONS),
        "status": rng.choice(STATUSES),
        "household_size": rng.choice([None, 3, 5]),
        "baseline_monthly_income": rng.choice([None, 900_000, 1_500_000]),
    }
    if kind == "participant.registered":
        return ParticipantRegistered(participant_id=pid, version=version, nik_token="t" * 64, registered_at=AT, **facts)
    if kind == "participant.updated":
        return ParticipantUpdated(
            participant_id=pid, version=version, changed_fields=["status"], updated_at=AT, **facts
        )
    return ParticipantStatusChanged(
        participant_id=pid,
        version=version,
        from_status="active",
        to_status=rng.choice(STATUSES),  # type: ignore[arg-type]
        reason_code="test",
        changed_at=AT,
    )


def _script(rng: random.Random, participants: int) -> list[tuple[str, int, int, int]]:
    """(kind, participant number, version, seed of the payload's facts) in delivery order: several
    events per participant, versions shuffled (late and repeated versions among them), interleaved."""
    script = []
    for p in range(participants):
        versions = [rng.randint(1, 6) for _ in range(rng.randint(1, 5))]
        kinds = rng.choices(
            ["participant.registered", "participant.updated", "participant.status_changed"], k=len(versions)
        )
        script += [(kind, p, v, rng.randrange(1 << 30)) for kind, v in zip(kinds, versions, strict=True)]
    rng.shuffle(script)
    return script


def _envelopes(script: list[tuple[str, int, int, int]], prefix: str) -> list[bytes]:
    out = []
    for kind, p, version, seed in script:
        pid = f"{prefix}{p}"
        contract = BY_NAME[kind]
        event = make_event(
            event_type=contract.type,
            source="/pena/participants",
            subject=pid,
            time=AT,
            data=_payload(kind, pid, version, random.Random(seed)).model_dump(mode="json"),
            dataschema=contract.dataschema,
        )
        out.append(event.to_bytes())
    return out


async def _rows(runtime: Any, service: str, table: Table, prefix: str) -> dict[str, tuple[Any, ...]]:
    async with runtime.service(service).db.transaction() as session:
        rows = (await session.execute(select(table).where(table.c.participant_id.startswith(prefix)))).all()
    return {row.participant_id.removeprefix(prefix): tuple(row)[1:] for row in rows}


@pytest.mark.parametrize(
    ("definition", "model"),
    [(training, EligibleParticipant), (monev, BaselineParticipant), (graduation, ParticipantView)],
    ids=["training", "monev", "graduation"],
)
async def test_a_batch_of_participant_events_ends_as_one_by_one(
    make_runtime, definition: ServiceDefinition, model: Any
) -> None:
    runtime = await make_runtime([definition], workers=False)
    sub = runtime.service(definition.name).subscriber
    batch_handler = sub.batch_handlers["participant.registered"]
    sizes: list[int] = []

    async def spy(session: Any, deliveries: list[Delivery]) -> None:
        sizes.append(len(deliveries))
        await batch_handler(session, deliveries)

    # one spy for every name the service batches: runs stay together as with the real handlers
    sub.batch_handlers = {name: spy for name, h in sub.batch_handlers.items() if h is batch_handler}
    topic = sub.settings.topic("participants")
    rng = random.Random(20261130)
    script = _script(rng, participants=40)
    one_by_one = _envelopes(script, "one-")
    batched = _envelopes(script, "bat-")
    for offset, raw in enumerate(one_by_one):
        assert await deliver(sub, raw, origin=f"{topic}/0/{offset}") in ("processed", "ignored")
    records = [(raw, f"{topic}/1/{offset}") for offset, raw in enumerate(batched)]
    records.insert(len(records) // 2, records[3])  # a redelivered record inside the run
    outcomes = await deliver_records(sub, records)
    assert outcomes.count("duplicate") == 1
    # the events went through the batch handler in runs, not one by one (monev's status changes, which
    # it does not batch, split its runs)
    assert max(sizes) >= 5, sizes
    assert sum(sizes) > len(records) // 3, sizes

    table = model.__table__
    expected = await _rows(runtime, definition.name, table, "one-")
    assert len(expected) > 30  # the script touched most participants (status-only ones too)
    assert await _rows(runtime, definition.name, table, "bat-") == expected
    # and each row holds the newest version its participant's events carried (where it applies)
    newest: dict[int, int] = {}
    for kind, p, version, _ in script:
        if kind in sub.handlers and (definition is not monev or kind != "participant.status_changed"):
            newest[p] = version if version > newest.get(p, 0) else newest[p]
    version_at = [c.name for c in table.columns][1:].index("version")
    assert {int(p): row[version_at] for p, row in expected.items()} == newest
