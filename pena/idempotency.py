"""Idempotency-Key for creating POSTs (IETF httpapi idempotency-key draft): the same key with the same
body returns the first answer, with another body 422, while the first is still in flight 409.
The key row is written in the same transaction as the effect, so a rolled-back request leaves no key.
A concurrent duplicate blocks on the first one's uncommitted row and then sees its stored answer."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.problems import Problem
from pena.tables import idempotency_keys

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="retry-safe creation: same key + same body = the first answer"),
]


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


EffectAnswer = tuple[int, Any] | tuple[int, Any, dict[str, str]]


async def idempotent(
    session: AsyncSession,
    *,
    principal: Principal,
    key: str | None,
    scope: str,
    body: Any,
    effect: Callable[[], Awaitable[EffectAnswer]],
) -> JSONResponse:
    """Runs a creating effect once per (client, Idempotency-Key). `scope` names the operation, so one
    key reused on another endpoint with the same body is a different request. `effect` returns
    (status, body) or (status, body, headers); the headers go with the first answer only."""
    client = principal.client_id or principal.subject
    fingerprint = {"scope": scope, "body": body}
    if key:
        stored = await claim_key(session, client_id=client, key=key, body=fingerprint)
        if stored:
            return JSONResponse(stored.body, status_code=stored.status)
    answer = await effect()
    status, payload = answer[0], answer[1]
    headers = answer[2] if len(answer) == 3 else None
    if key:
        await store_response(session, client_id=client, key=key, status=status, body=payload)
    return JSONResponse(payload, status_code=status, headers=headers)
