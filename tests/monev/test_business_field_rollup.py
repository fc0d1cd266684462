"""The Monev summary by business field counts a sub-field in its field (the kernel taxonomy's roll-up)."""

from __future__ import annotations

from datetime import UTC, datetime

from pena.clock import ManualClock
from tests.monev.support import WIB, announce_completions, completion, monev, register, scheduler
from tests.support import participants_publisher, training_publisher


async def test_summary_by_business_field_rolls_sub_fields_up(make_runtime, api, auth) -> None:
    clock = ManualClock(datetime(2026, 1, 5, tzinfo=UTC))
    runtime = await make_runtime([training_publisher, participants_publisher, monev], clock=clock)
    nov = datetime(2025, 11, 30, 10, 0, tzinfo=WIB)
    fields = {"p-1": "kuliner", "p-2": "makanan_berat", "p-3": "konveksi"}
    for pid in fields:
        await register(runtime, pid)
    await announce_completions(runtime, *(completion(pid, nov, business_field=f) for pid, f in fields.items()))
    clock.set(datetime(2026, 3, 10, 9, 0, tzinfo=WIB))
    await scheduler(runtime).drain()
    async with api(runtime) as client:
        summary = await client.get("/v1/monev/summary", params={"group_by": "business_field"}, headers=auth("admin"))
    assert summary.status_code == 200, summary.text
    totals = {g["group"]: g["tasks_total"] for g in summary.json()["groups"]}
    assert totals == {"fashion_menjahit": 1, "kuliner": 2}
