"""The two steps every single-record read of graduation shares: the record only when the caller's reach
covers its region (else 404 exactly like a missing one, so nothing is revealed), and the audit row of a
read of a participant's graduation data (income is specific personal data under UU PDP)."""

from __future__ import annotations

from typing import Protocol, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.access import Reach, covers_region
from pena.audit import record_audit
from pena.auth import Principal
from pena.problems import not_found


class RegionalRecord(Protocol):
    @property
    def id(self) -> str: ...
    @property
    def participant_id(self) -> str: ...
    @property
    def region_code(self) -> str: ...


Record = TypeVar("Record", bound=RegionalRecord)


def reached(record: Record | None, reach: Reach, *, kind: str, ident: str) -> Record:
    """`record` when it exists and `reach` covers its region; otherwise 404 like a missing one."""
    if record is None or not covers_region(reach, record.region_code):
        raise not_found(kind, ident)
    return record


async def audit_read(session: AsyncSession, principal: Principal, record: RegionalRecord, *, kind: str) -> None:
    await record_audit(
        session,
        actor=principal,
        action=f"graduation.{kind}.read",
        subject_type="participant",
        subject_id=record.participant_id,
        purpose="graduation",
        details={f"{kind}_id": record.id},
    )
