"""Idempotency-Key for creating POSTs (IETF httpapi idempotency-key draft): the same key with the same
body returns the first answer, with another body 422, while the first is still in flight 409.
The key row is written in the same transaction as the effect, so a rolled-back request leaves no key.
A concurrent duplicate blocks on the first one's uncommitted row and then sees its stored answer.

No personal data in clear: the stored answer is sealed with the service's field cipher (AES-GCM,
pena.crypto) and the request fingerprint is a keyed hash (HMAC), not a plain digest of the body.
Keys expire: after `PENA_IDEMPOTENCY_TTL` (default 24 h) a key behaves as new, and the retention
job (pena.retention) deletes it."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from cryptography.exceptions import InvalidTag
from fastapi import Header
from fastapi.responses import JSONResponse
from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.crypto import FieldCipher
from pena.db import settings_of
from pena.problems import Problem
from pena.settings import Settings
from pena.tables import idempotency_keys

IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", description="retry-safe creation: same key + same body = the first answer"),
]


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: Any


SEALED = "sealed"
"""The one key of a stored response body: the answer's JSON, encrypted with the field cipher."""


def request_fingerprint(body: Any, settings: Settings) -> str:
    """A keyed hash (HMAC-SHA256) of the request: equal bodies match, and the stored value tells
    nothing about a body (a plain digest of a low-entropy body, e.g. a NIK, could be guessed)."""
    key = hashlib.sha256(b"pena.idempotency:" + base64.b64decode(settings.field_encryption_key)).digest()
    return hmac.new(key, json.dumps(body, sort_keys=True, default=str).encode(), hashlib.sha256).hexdigest()


def _cipher(settings: Settings) -> FieldCipher:
    return FieldCipher(settings.field_encryption_key)


def seal(body: Any, settings: Settings) -> dict[str, str]:
    return {SEALED: _cipher(settings).encrypt(json.dumps(body, default=str))}


def unseal(stored: Any, settings: Settings) -> Any:
    if isinstance(stored, dict) and set(stored) == {SEALED}:
        try:
            return json.loads(_cipher(settings).decrypt(stored[SEALED]))
        except (InvalidTag, ValueError) as exc:  # sealed under a key since rotated: never re-run the effect
            raise Problem(
                409,
                "Conflict",
                "the first answer to this Idempotency-Key can no longer be read; send the request with a new key",
                type_="idempotency-answer-unreadable",
            ) from exc
    return stored  # a row stored before answers were sealed (expires with the TTL)


async def claim_key(session: AsyncSession, *, client_id: str, key: str, body: Any) -> StoredResponse | None:
    """Returns the stored answer for a repeated request, None when this request is the first (also
    when the key was last used longer than the TTL ago: an expired key behaves as new)."""
    if len(key) > 200:
        raise Problem(400, "Bad request", "Idempotency-Key is longer than 200 characters", type_="idempotency-key")
    settings = settings_of(session)
    fingerprint = request_fingerprint(body, settings)
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
    renewed = (
        await session.execute(
            update(idempotency_keys)
            .where(
                idempotency_keys.c.client_id == client_id,
                idempotency_keys.c.idem_key == key,
                idempotency_keys.c.created_at < func.now() - settings.idempotency_ttl,
            )
            .values(request_hash=fingerprint, response_status=None, response_body=None, created_at=func.now())
            .returning(idempotency_keys.c.idem_key)
        )
    ).first()
    if renewed is not None:  # expired: the key starts afresh for this request
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
    return StoredResponse(row.response_status, unseal(row.response_body, settings))


async def store_response(session: AsyncSession, *, client_id: str, key: str, status: int, body: Any) -> None:
    """Stores the answer replayed for a repeated key, sealed with the service's field cipher (so a
    decrypted note or a NIK in an answer never rests in clear); replays return it decrypted."""
    await session.execute(
        update(idempotency_keys)
        .where(idempotency_keys.c.client_id == client_id, idempotency_keys.c.idem_key == key)
        .values(response_status=status, response_body=seal(body, settings_of(session)))
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
