"""Test support for the training service: API shortcuts (a centre, a batch body, an open batch, a status
move) and tokens with any `unit` claim. Stand-in publishers and outbox/audit readers are shared: tests/support.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx


async def create_centre(
    client: httpx.AsyncClient, admin: dict[str, str], code: str = "BBPPKS-PADANG", *, region_code: str = "1371"
) -> str:
    response = await client.post(
        "/v1/training-centres",
        json={"name": "BBPPKS Padang", "code": code, "region_code": region_code, "operators": ["op-1"]},
        headers=admin,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def batch_body(
    centre_id: str, *, start: date = date(2025, 12, 1), sessions: int = 5, capacity: int = 10, **extra: Any
) -> dict[str, Any]:
    return {
        "centre_id": centre_id,
        "name": "Angkatan I Menjahit",
        "business_field": "fashion_menjahit",
        "method": "life_skill_training",
        "start_date": start.isoformat(),
        "end_date": (start + timedelta(days=sessions + 2)).isoformat(),
        "sessions": [
            {"date": (start + timedelta(days=i)).isoformat(), "module": "technical_skills"} for i in range(sessions)
        ],
        "region_code": "1371011001",
        "capacity": capacity,
        "trainers": ["trainer-1"],
        **extra,
    }


async def open_batch(
    client: httpx.AsyncClient, headers: dict[str, str], centre_id: str, **kwargs: Any
) -> dict[str, Any]:
    response = await client.post("/v1/batches", json=batch_body(centre_id, **kwargs), headers=headers)
    assert response.status_code == 201, response.text
    batch = response.json()
    moved = await client.post(f"/v1/batches/{batch['id']}/status", json={"status": "open"}, headers=headers)
    assert moved.status_code == 200, moved.text
    return dict(batch)


async def set_status(client: httpx.AsyncClient, headers: dict[str, str], batch_id: str, status: str) -> httpx.Response:
    return await client.post(f"/v1/batches/{batch_id}/status", json={"status": status}, headers=headers)
