"""Test support for the training service: API shortcuts (a centre, a batch body, an open batch, a status
move) and tokens with any `unit` claim. Stand-in publishers and outbox/audit readers are shared: tests/support.py."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

import httpx
import jwt

from pena.auth import dev_private_key, issue_dev_token
from pena.settings import Settings


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


_ABSENT = object()


def token(settings: Settings, role: str, *, unit: object = _ABSENT, sub: str | None = None) -> dict[str, str]:
    """An Authorization header for a dev-key token whose `unit` claim may be anything JSON holds (an empty
    string, a number, a malformed code), or absent; `auth(...)` can only issue a non-empty string unit.
    The dev token's claims, with `unit` replaced, signed again with the dev key."""
    issued = jwt.decode(issue_dev_token(settings, role=role, sub=sub), options={"verify_signature": False})
    claims: dict[str, Any] = {name: value for name, value in issued.items() if name != "unit"}
    if unit is not _ABSENT:
        claims["unit"] = unit
    encoded = jwt.encode(claims, dev_private_key(settings), algorithm="RS256", headers={"kid": "pena-dev"})
    return {"Authorization": f"Bearer {encoded}"}
