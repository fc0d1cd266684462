"""Statistics by business field count a sub-field in its field (the kernel taxonomy's roll-up): a
`kuliner` row includes `makanan_berat`."""

from __future__ import annotations

from typing import Any

from tests.graduation.conftest import Env
from tests.graduation.support import monev_result, publish_monev


async def test_a_kuliner_row_includes_makanan_berat(env: Env, auth: Any) -> None:
    await publish_monev(env.runtime, monev_result("p-kuliner", income=3_000_000, business_field="kuliner"))
    await publish_monev(env.runtime, monev_result("p-meals", income=3_000_000, business_field="makanan_berat"))
    await publish_monev(env.runtime, monev_result("p-garments", income=3_000_000, business_field="konveksi"))
    answer = await env.client.get(
        "/v1/graduation/statistics",
        params={"as_of": "2026-01-05", "group_by": "business_field"},
        headers=auth("integrator"),
    )
    assert answer.status_code == 200, answer.text
    ready = {g["key"]: g["persons"]["ready"] for g in answer.json()["groups"]}
    assert ready == {"kuliner": 2, "fashion_menjahit": 1}
    assert answer.json()["totals"]["persons"]["ready"] == 3
