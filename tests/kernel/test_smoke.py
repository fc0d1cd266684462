from __future__ import annotations

from sqlalchemy import select

from tests.kernel import probe


async def test_inprocess_flow_applies_each_event_once(make_runtime) -> None:
    runtime = await make_runtime([probe.publisher, probe.consumer], bus="inprocess")
    pub, con = runtime.service("training"), runtime.service("probe")
    async with pub.db.transaction() as s:
        for i in range(5):
            await probe.create_thing(s, "p1", i)
    assert await pub.relay.drain() == 5
    async with con.db.transaction() as s:
        rows = (await s.execute(select(probe.effects.c.seq).order_by(probe.effects.c.id))).scalars().all()
    assert rows == [0, 1, 2, 3, 4]
