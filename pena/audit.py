"""Audit entries: append-only rows written in the business transaction (who, client, action, subject
pseudonym, purpose, request id, outcome). Reads of personal data are audited too."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from pena.context import correlation_id_var, request_id_var
from pena.db import copy_rows
from pena.pagination import Page, PageRequest, keyset_page, read_cursor
from pena.queries import AuditFilter, audit_entries
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
    """Writes audit entries (from `audit_row`) in one statement inside the caller's transaction; a
    large batch through COPY (`pena.db.copy_rows`)."""
    if rows:
        await copy_rows(session, audit_log, rows)


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


async def audit_subjects(
    session: AsyncSession,
    actor: Principal | None,
    action: str,
    subject_type: str,
    ids: Iterable[str],
    purpose: str | None = None,
    *,
    details: dict[str, Any] | None = None,
) -> int:
    """Audits a read of many records (a list page, an export, a search) with one entry per subject id,
    in one set-based statement inside the caller's transaction; each id once, in the order given. A
    read that returned nothing still leaves one entry (no subject, `details.subjects = 0`). Returns
    the number of entries written.

        await audit_subjects(session, principal, "participant.list", "participant", [p.id for p in page])
    """
    unique = list(dict.fromkeys(ids))
    if not unique:
        rows = [
            audit_row(
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=None,
                purpose=purpose,
                details={**(details or {}), "subjects": 0},
            )
        ]
    else:
        rows = [
            audit_row(
                actor=actor,
                action=action,
                subject_type=subject_type,
                subject_id=subject_id,
                purpose=purpose,
                details=details,
            )
            for subject_id in unique
        ]
    await record_audits(session, rows)
    return len(rows)


class AuditEntryRead(BaseModel):
    """One audit entry as the audit API returns it (subject ids are pseudonymous: never a NIK or name)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5812,
                    "at": "2026-11-30T02:15:07Z",
                    "actor": "fac-padang-01",
                    "client_id": None,
                    "roles": "facilitator",
                    "unit": "1371",
                    "action": "participant.read",
                    "subject_type": "participant",
                    "subject_id": "6f1c2a4e-8b3d-4c59-9e2f-1a7b5c3d9e10",
                    "purpose": "monev home visit",
                    "outcome": "ok",
                    "request_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "correlation_id": "4bf92f3577b34da6a3ce929d0e0e4736",
                    "details": None,
                }
            ]
        }
    )
    id: int
    at: datetime
    actor: str | None
    client_id: str | None
    roles: str | None
    unit: str | None
    action: str
    subject_type: str
    subject_id: str | None
    purpose: str | None
    outcome: str
    request_id: str | None
    correlation_id: str | None
    details: dict[str, Any] | None


async def read_audit(
    session: AsyncSession, reader: Principal, where: AuditFilter, page: PageRequest
) -> Page[AuditEntryRead]:
    """A page of a service's audit log, newest first; the read itself is audited (`audit.read`, with
    its filters), so who looked at whose trail is on the trail too."""
    after = read_cursor(page, ("id", int))
    rows = await audit_entries(session, where, before_id=after[0] if after else None, limit=page.limit + 1)
    result = keyset_page(
        rows, page, key=lambda r: {"id": str(r.id)}, item=lambda r: AuditEntryRead.model_validate(r._mapping)
    )
    filters = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(where).items() if v is not None}
    await record_audit(
        session,
        actor=reader,
        action="audit.read",
        subject_type="audit_log",
        subject_id=None,
        details={"filters": filters, "entries": len(result.items)},
    )
    return result
