"""The kernel's own SQL on the kernel tables that is not part of a mechanism's hot path: reads of the
audit log (the audit API) and the retention deletes (the retention job). Services never call these;
they use pena.audit and the routes the kernel mounts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, Row, bindparam, select, text
from sqlalchemy.types import Interval
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.tables import audit_log


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries to read; every field narrows (None: no condition)."""

    subject_type: str | None = None
    subject_id: str | None = None
    actor: str | None = None
    action: str | None = None
    since: datetime | None = None  # at >= since
    until: datetime | None = None  # at < until


async def audit_entries(
    session: AsyncSession, where: AuditFilter, *, before_id: int | None, limit: int
) -> list[Row[Any]]:
    """Audit entries matching `where`, newest first (by id, the order they were written), only those
    older than `before_id` (the keyset cursor) when given; at most `limit` rows."""
    query = select(audit_log)
    conditions = {
        audit_log.c.subject_type: where.subject_type,
        audit_log.c.subject_id: where.subject_id,
        audit_log.c.actor: where.actor,
        audit_log.c.action: where.action,
    }
    for column, value in conditions.items():
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(audit_log.c.at >= where.since)
    if where.until is not None:
        query = query.where(audit_log.c.at < where.until)
    if before_id is not None:
        query = query.where(audit_log.c.id < before_id)
    return list((await session.execute(query.order_by(audit_log.c.id.desc()).limit(limit))).all())


# Retention: one bounded batch per statement. The age is compared with the database's clock, the one
# that stamped the rows. Outbox rows by id (old rows first on its primary key); inbox and idempotency
# rows by ctid (their keys carry no time order).
_PURGES: dict[str, str] = {
    "outbox": """
        DELETE FROM outbox WHERE id = ANY(ARRAY(
            SELECT id FROM outbox WHERE published_at < now() - :age ORDER BY id LIMIT :batch))""",
    "inbox": """
        DELETE FROM inbox WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM inbox WHERE processed_at < now() - :age LIMIT :batch))""",
    "idempotency_keys": """
        DELETE FROM idempotency_keys WHERE ctid = ANY(ARRAY(
            SELECT ctid FROM idempotency_keys WHERE created_at < now() - :age LIMIT :batch))""",
}


async def purge_older_than(session: AsyncSession, table: str, age: timedelta, batch: int) -> int:
    """Deletes at most `batch` rows of a kernel table (`outbox`: published ones only) older than `age`.
    Returns how many went."""
    statement = text(_PURGES[table]).bindparams(bindparam("age", type_=Interval()), bindparam("batch"))
    result = await session.execute(statement, {"age": age, "batch": batch})
    assert isinstance(result, CursorResult)
    return int(result.rowcount)
