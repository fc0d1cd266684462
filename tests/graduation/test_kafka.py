"""Over real Kafka: a Monev result published by a small "monev" publisher reaches graduation's
consumer, is assessed, and graduation.assessed reaches its own topic (twice delivered, one effect)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select

from pena.clock import ManualClock
from pena.kafka import ensure_topics
from pena.tables import inbox
from services.graduation.app import definition as graduation
from services.graduation.models import Assessment
from tests.graduation.conftest import START
from tests.graduation.support import monev_result, publish_monev
from tests.support import eventually, monev_publisher, read_topic

pytestmark = pytest.mark.kafka


async def test_monev_completed_over_kafka_is_assessed_once(make_runtime: Any, settings: Any) -> None:
    await ensure_topics(settings, ["monev", "graduation", "participants"])
    runtime = await make_runtime([monev_publisher, graduation], bus="kafka", workers=True, clock=ManualClock(START))
    grad = runtime.service("graduation")
    # 2023 figures are seeded (poverty line Rp 351,957; example UMK for Kota Padang)
    result = monev_result("p-kafka", income=3_000_000, household_size=3, visit=date(2023, 7, 20))
    await publish_monev(runtime, result, drain=False)
    await publish_monev(runtime, result, drain=False)  # the same submission published twice (two event ids)

    async def both_handled() -> bool:
        async with grad.db.transaction() as session:
            count = (await session.execute(select(func.count()).select_from(inbox))).scalar_one()
            return int(count) == 2

    await eventually(both_handled, what="both monev.completed deliveries handled over Kafka")
    records = await read_topic(settings.kafka_bootstrap, settings.topic("graduation"), expect=1)
    assert [r["value"]["data"]["participant_id"] for r in records] == ["p-kafka"]
    assert records[0]["key"] == b"p-kafka"
    data = records[0]["value"]["data"]
    assert data["outcome"] == "ready"
    assert data["policy_version"] == 1
    async with grad.db.transaction() as session:
        rows = (await session.execute(select(Assessment))).scalars().all()
    assert len(rows) == 1
    assert rows[0].reference_values["poverty_line"]["amount"] == 351_957
