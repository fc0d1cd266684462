"""The participant's own history (participant_changes): one row per registration, change, status move
and erasure, with field names and reasons, never values."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.auth import Principal
from services.participants.models import Participant, ParticipantChange


def change_values(
    participant_id: str,
    version: int,
    *,
    action: str,
    actor: str,
    at: datetime,
    changed_fields: list[str] | None = None,
    from_status: str | None = None,
    to_status: str | None = None,
    reason_code: str | None = None,
    reason: str | None = None,
) -> dict[str, Any]:
    return {
        "participant_id": participant_id,
        "version": version,
        "action": action,
        "changed_fields": changed_fields or [],
        "from_status": from_status,
        "to_status": to_status,
        "reason_code": reason_code,
        "reason": reason,
        "actor": actor,
        "at": at,
    }


async def record_change(
    session: AsyncSession, participant: Participant, *, action: str, actor: str, at: datetime, **details: Any
) -> None:
    """Adds the history row of a change to `participant` at its current version (`details`: the
    optional fields of `change_values`)."""
    values = change_values(participant.id, participant.version, action=action, actor=actor, at=at, **details)
    session.add(ParticipantChange(**values))


def actor_name(actor: Principal | None) -> str:
    return actor.subject if actor else "system"
