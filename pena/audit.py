"""Audit entries: append-only rows written in the business transaction (who, client, action, subject
pseudonym, purpose, request id, outcome). Reads of personal data are audited too."""

from __future__ import annotations

from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.context import correlation_id_var, request_id_var
from pena.db import insert_rows
from pena.tables import audit_log


def audit_row(
    *,
    actor: Principal | None,
    action: str,
    subject_type: str,
    subject_id: str | None,
    outcome: str = "ok",
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One audit entry, built in the current request/event context (its ids are read now)."""
    return {
        "actor": actor.subject if actor else "system",
        "client_id": actor.client_id if actor else None,
        "roles": ",".join(sorted(actor.roles)) if actor else None,
        "unit": actor.unit if actor else None,
        "action": action,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "purpose": purpose,
        "outcome": outcome,
        "request_id": request_id_var.get(),
        "correlation_id": correlation_id_var.get(),
        "details": details,
    }


async def record_audits(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """Writes audit entries (from `audit_row`) in one statement inside the caller's transaction."""
    if rows:
        await insert_rows(session, audit_log, rows)


async def record_audit(
    session: AsyncSession,
    *,
    actor: Principal | None,
    action: str,
    subject_type: str,
    subject_id: str | None,
    outcome: str = "ok",
    purpose: str | None = None,
    details: dict[str, Any] | None = None,
) -> None:
    await record_audits(
        session,
        [
            audit_row(
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                outcome=outcome,
                purpose=purpose,
                details=details,
            )
        ],
    )
