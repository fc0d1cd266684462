"""All SQL of the training service (the convention in docs/kernel.md): every read, the attendance
writes and the read-model upsert. Use cases call these; nothing else in the package builds a statement."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, delete, func, insert, or_, select, tuple_
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from pena.db import any_of, copy_rows, detached, insert_rows, update_rows
from pena.readmodel import upsert_many_if_newer
from services.training.models import (
    Attendance,
    Batch,
    BatchSession,
    EligibleParticipant,
    Enrolment,
    EntryPolicy,
    TrainingCentre,
)


async def centre_by_id(session: AsyncSession, centre_id: str) -> TrainingCentre | None:
    return await session.get(TrainingCentre, centre_id)


async def centre_by_code(session: AsyncSession, code: str) -> TrainingCentre | None:
    result = await session.execute(select(TrainingCentre).where(col(TrainingCentre.code) == code))
    return result.scalars().first()


async def list_centres(
    session: AsyncSession, *, only_id: str | None, region_prefixes: list[str], after_code: str | None, limit: int
) -> list[TrainingCentre]:
    """Centres by code; `region_prefixes`: the region code starts with every one of them."""
    query = select(TrainingCentre)
    if only_id is not None:
        query = query.where(col(TrainingCentre.id) == only_id)
    for prefix in region_prefixes:
        query = query.where(col(TrainingCentre.region_code).startswith(prefix, autoescape=True))
    if after_code is not None:
        query = query.where(col(TrainingCentre.code) > after_code)
    query = query.order_by(col(TrainingCentre.code)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def batch_by_id(session: AsyncSession, batch_id: str, *, for_update: bool = False) -> Batch | None:
    query = select(Batch).where(col(Batch.id) == batch_id)
    if for_update:
        # serialises enrolment, attendance and closing of one batch (capacity holds under concurrency)
        query = query.with_for_update()
    return (await session.execute(query)).scalars().first()


async def list_batches(
    session: AsyncSession,
    *,
    centre_id: str | None,
    centre_region_prefix: str | None,
    status: str | None,
    business_field: str | None,
    region_prefix: str | None,
    start_from: date | None,
    start_to: date | None,
    after: tuple[date, str] | None,
    limit: int,
) -> list[Batch]:
    query = select(Batch)
    conditions: list[Any] = []
    if centre_id:
        conditions.append(col(Batch.centre_id) == centre_id)
    if centre_region_prefix:
        centres_there = select(col(TrainingCentre.id)).where(
            col(TrainingCentre.region_code).startswith(centre_region_prefix, autoescape=True)
        )
        conditions.append(col(Batch.centre_id).in_(centres_there))
    if status:
        conditions.append(col(Batch.status) == status)
    if business_field:
        conditions.append(col(Batch.business_field) == business_field)
    if region_prefix:
        conditions.append(col(Batch.region_code).startswith(region_prefix))
    if start_from:
        conditions.append(col(Batch.start_date) >= start_from)
    if start_to:
        conditions.append(col(Batch.start_date) <= start_to)
    if after is not None:
        after_date, after_id = after
        conditions.append(
            or_(col(Batch.start_date) > after_date, and_(col(Batch.start_date) == after_date, col(Batch.id) > after_id))
        )
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(col(Batch.start_date), col(Batch.id)).limit(limit + 1)
    return list((await session.execute(query)).scalars().all())


async def sessions_of(session: AsyncSession, batch_id: str) -> list[BatchSession]:
    query = (
        select(BatchSession)
        .where(col(BatchSession.batch_id) == batch_id)
        .order_by(col(BatchSession.session_date), col(BatchSession.module), col(BatchSession.id))
    )
    return list((await session.execute(query)).scalars().all())


async def enrolled_count(session: AsyncSession, batch_id: str) -> int:
    query = (
        select(func.count())
        .select_from(Enrolment)
        .where(col(Enrolment.batch_id) == batch_id, col(Enrolment.status).in_(("enrolled", "completed")))
    )
    return int((await session.execute(query)).scalar_one())


async def enrolment(session: AsyncSession, batch_id: str, participant_id: str) -> Enrolment | None:
    query = select(Enrolment).where(
        col(Enrolment.batch_id) == batch_id,
        col(Enrolment.participant_id) == participant_id,
    )
    return (await session.execute(query)).scalars().first()


async def enrolments_of(session: AsyncSession, batch_id: str, *, status: str | None = None) -> list[Enrolment]:
    query = select(Enrolment).where(col(Enrolment.batch_id) == batch_id)
    if status:
        query = query.where(col(Enrolment.status) == status)
    query = query.order_by(col(Enrolment.enrolled_at), col(Enrolment.participant_id))
    return list((await session.execute(query)).scalars().all())


async def attended_counts(session: AsyncSession, batch_id: str) -> dict[str, int]:
    """participant id -> sessions attended in the batch."""
    query = (
        select(col(Attendance.participant_id), func.count())
        .where(col(Attendance.batch_id) == batch_id)
        .group_by(col(Attendance.participant_id))
    )
    return {row[0]: int(row[1]) for row in (await session.execute(query)).all()}


async def present_in_session(session: AsyncSession, session_id: str) -> set[str]:
    query = select(col(Attendance.participant_id)).where(col(Attendance.session_id) == session_id)
    return set((await session.execute(query)).scalars().all())


async def replace_attendance(session: AsyncSession, *, batch_id: str, session_id: str, present: list[str]) -> None:
    """The session's attendance becomes exactly `present` (a correction replaces the earlier record)."""
    await session.execute(delete(Attendance).where(col(Attendance.session_id) == session_id))
    if present:
        await session.execute(
            insert(Attendance),
            [{"session_id": session_id, "participant_id": p, "batch_id": batch_id} for p in present],
        )


async def eligibility(session: AsyncSession, participant_id: str) -> EligibleParticipant | None:
    return await session.get(EligibleParticipant, participant_id)


# ------------------------------------------------------------------ entry policies


async def entry_policy_in_force(session: AsyncSession, on: date) -> EntryPolicy | None:
    """The entry-policy version with the latest effective_from on or before `on`."""
    query = (
        select(EntryPolicy)
        .where(col(EntryPolicy.effective_from) <= on)
        .order_by(col(EntryPolicy.effective_from).desc())
        .limit(1)
    )
    return (await session.execute(query)).scalars().first()


async def entry_policies(session: AsyncSession) -> list[EntryPolicy]:
    query = select(EntryPolicy).order_by(col(EntryPolicy.effective_from))
    return list((await session.execute(query)).scalars().all())


# ------------------------------------------------------------------ eligible participants (read model)


async def upsert_eligible_participants(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """The newer version wins, set-based for a batch of events in delivery order; each row holds the
    columns its event carries (a status change has no region)."""
    table = EligibleParticipant.__table__  # type: ignore[attr-defined]
    await upsert_many_if_newer(session, table, rows, key="participant_id")


# ------------------------------------------------------------------ backfill imports (set-based, one statement each)


async def centres_by_codes(session: AsyncSession, codes: set[str]) -> list[TrainingCentre]:
    if not codes:
        return []
    query = select(*TrainingCentre.__table__.c).where(col(TrainingCentre.code) == any_of("codes", codes))  # type: ignore[attr-defined]
    return detached(TrainingCentre, (await session.execute(query)).all())


async def batches_by_refs(
    session: AsyncSession, refs: set[tuple[str, str]], *, for_update: bool = False
) -> list[Batch]:
    """The batches of (centre id, batch_ref) pairs; locked in a fixed order when `for_update` (enrolment,
    attendance and closing of one batch take turns, as on the single-record paths)."""
    if not refs:
        return []
    query = (
        select(*Batch.__table__.c)  # type: ignore[attr-defined]
        .where(tuple_(col(Batch.centre_id), col(Batch.batch_ref)).in_(sorted(refs)))
        .order_by(col(Batch.id))
    )
    if for_update:
        query = query.with_for_update()
    return detached(Batch, (await session.execute(query)).all())


async def insert_batches(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Inserts the batches whose (centre, batch_ref) is new; returns the ids inserted."""
    table = Batch.__table__  # type: ignore[attr-defined]
    return set(await insert_rows(session, table, rows, skip_conflicts=True, returning="id"))


async def insert_sessions(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    """Inserts the sessions whose (batch, date, module) is new; returns the ids inserted."""
    table = BatchSession.__table__  # type: ignore[attr-defined]
    return set(await insert_rows(session, table, rows, skip_conflicts=True, returning="id"))


async def sessions_of_batches(session: AsyncSession, batch_ids: set[str]) -> list[BatchSession]:
    if not batch_ids:
        return []
    query = (
        select(*BatchSession.__table__.c)  # type: ignore[attr-defined]
        .where(col(BatchSession.batch_id) == any_of("ids", batch_ids))
        .order_by(col(BatchSession.session_date), col(BatchSession.module), col(BatchSession.id))
    )
    return detached(BatchSession, (await session.execute(query)).all())


async def mark_attendance_recorded(session: AsyncSession, session_ids: list[str], when: Any) -> None:
    table = BatchSession.__table__  # type: ignore[attr-defined]
    await update_rows(session, table, [{"id": i, "attendance_recorded_at": when} for i in session_ids], key="id")


async def eligibilities(session: AsyncSession, participant_ids: set[str]) -> list[EligibleParticipant]:
    if not participant_ids:
        return []
    query = select(*EligibleParticipant.__table__.c).where(  # type: ignore[attr-defined]
        col(EligibleParticipant.participant_id) == any_of("ids", participant_ids)
    )
    return detached(EligibleParticipant, (await session.execute(query)).all())


async def enrolments_of_batches(
    session: AsyncSession, batch_ids: set[str], *, status: str | None = None
) -> list[Enrolment]:
    if not batch_ids:
        return []
    query = select(*Enrolment.__table__.c).where(col(Enrolment.batch_id) == any_of("ids", batch_ids))  # type: ignore[attr-defined]
    if status:
        query = query.where(col(Enrolment.status) == status)
    query = query.order_by(col(Enrolment.enrolled_at), col(Enrolment.participant_id))
    return detached(Enrolment, (await session.execute(query)).all())


async def insert_enrolments(session: AsyncSession, rows: list[dict[str, Any]]) -> set[str]:
    table = Enrolment.__table__  # type: ignore[attr-defined]
    return set(await insert_rows(session, table, rows, skip_conflicts=True, returning="id"))


async def update_enrolment_outcomes(session: AsyncSession, enrolments: list[Enrolment]) -> None:
    table = Enrolment.__table__  # type: ignore[attr-defined]
    columns = ("id", "status", "outcome_reason", "outcome_at", "sessions_attended", "attendance_rate")
    await update_rows(
        session, table, [{c: getattr(e, c) for c in columns} for e in enrolments], key="id", where="status = 'enrolled'"
    )


async def close_batches(session: AsyncSession, batches: list[Batch]) -> None:
    table = Batch.__table__  # type: ignore[attr-defined]
    rows = [
        {"id": b.id, "status": b.status, "completed_at": b.completed_at, "updated_at": b.updated_at} for b in batches
    ]
    await update_rows(session, table, rows, key="id", where="status = 'running'")


async def attendance_in_sessions(session: AsyncSession, session_ids: set[str]) -> set[tuple[str, str]]:
    """(session id, participant id) of everyone recorded present in these sessions."""
    if not session_ids:
        return set()
    query = select(col(Attendance.session_id), col(Attendance.participant_id)).where(
        col(Attendance.session_id) == any_of("ids", session_ids)
    )
    return {(row[0], row[1]) for row in (await session.execute(query)).all()}


async def insert_attendance(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """New attendance of sessions whose batches the caller locked (read after the lock: no one else adds
    theirs meanwhile, so nothing conflicts), through COPY for a chunk's thousands of rows."""
    await copy_rows(session, Attendance.__table__, rows)  # type: ignore[attr-defined]


async def delete_attendance(session: AsyncSession, pairs: list[tuple[str, str]]) -> None:
    if pairs:
        await session.execute(
            delete(Attendance).where(tuple_(col(Attendance.session_id), col(Attendance.participant_id)).in_(pairs))
        )


async def attended_counts_of_batches(session: AsyncSession, batch_ids: set[str]) -> dict[str, dict[str, int]]:
    """batch id -> participant id -> sessions attended."""
    if not batch_ids:
        return {}
    query = (
        select(col(Attendance.batch_id), col(Attendance.participant_id), func.count())
        .where(col(Attendance.batch_id) == any_of("ids", batch_ids))
        .group_by(col(Attendance.batch_id), col(Attendance.participant_id))
    )
    counts: dict[str, dict[str, int]] = {}
    for batch_id, participant_id, count in (await session.execute(query)).all():
        counts.setdefault(batch_id, {})[participant_id] = int(count)
    return counts
