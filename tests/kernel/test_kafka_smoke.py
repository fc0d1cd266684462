from __future__ import annotations

from pena.kafka import ensure_topics
from tests.kernel import probe
from tests.support import eventually


async def test_kafka_flow_applies_each_event_once(make_runtime, settings) -> None:
    await ensure_topics(settings, ["training", "probe"])
    runtime = await make_runtime([probe.publisher, probe.consumer], bus="kafka", workers=True)
    pub, con = runtime.service("training"), runtime.service("probe")
    async with pub.db.transaction() as s:
        for i in range(5):
            await probe.create_thing(s, "p1", i)

    async def five() -> bool:
        async with con.db.transaction() as s:
            return await probe.effect_count(s) == 5

    await eventually(five, what="5 effects")
