"""Idempotency-Key for creating POSTs (IETF httpapi idempotency-key draft): the same key with the same
body returns the first answer, with another body 422, while the first is still in flight 409.
The key row is written in the same transaction as the effect, so a rolled-back request leaves no key.
A concurrent duplicate blocks on the first one's uncommitted row and then sees its stored answer."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.problems import Problem
from pena.tables import idempotency_keys


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


def request_fingerprint(body: Any) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def claim_key(session: AsyncSession, *, client_id: str, key: str, body: Any) -> StoredResponse | None:
    """Returns the stored answer for a repeated request, None when this request is the first."""
    if len(key) > 200:
        raise Problem(400, "Bad request", "Idempotency-Key is longer than 200 characters", type_="idempotency-key")
    fingerprint = request_fingerprint(body)
    inserted = (
        await session.execute(
            pg_insert(idempotency_keys)
            .values(client_id=client_id, idem_key=key, request_hash=fingerprint)
            .on_conflict_do_nothing()
            .returning(idempotency_keys.c.idem_key)
        )
    ).first()
    if inserted is not None:
        return None
    row = (
        await session.execute(
            select(idempotency_keys).where(
                idempotency_keys.c.client_id == client_id, idempotency_keys.c.idem_key == key
            )
        )
    ).first()
    if row is None:  # pragma: no cover - the conflicting row vanished (rolled back): treat as in flight
        raise Problem(
            409, "Conflict", "a request with this Idempotency-Key is in progress", type_="idempotency-in-flight"
        )
    if row.request_hash != fingerprint:
        raise Problem(
            422,
            "Idempotency-Key reused",
            "this Idempotency-Key was used with a different request body",
            type_="idempotency-key-reuse",
        )
    if row.response_status is None:
        raise Problem(
            409, "Conflict", "a request with this Idempotency-Key is in progress", type_="idempotency-in-flight"
        )
    return StoredResponse(row.response_status, row.response_body)


async def store_response(session: AsyncSession, *, client_id: str, key: str, status: int, body: Any) -> None:
    """Stores the answer replayed for a repeated key. The body is kept in clear JSON: a service whose
    answer carries personal data stores a reduced body (e.g. only the new id) and rebuilds the rest."""
    await session.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.client_id == client_id, idempotency_keys.c.idem_key == key)
        .values(response_status=status, response_body=json.loads(json.dumps(body, default=str)))
    )
