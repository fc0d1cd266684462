"""Every SELECT of the training service."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from services.training.models import (
    Attendance,
    Batch,
    BatchSession,
    EligibleParticipant,
    Enrolment,
    TrainingCentre,
)


async def centre_by_id(session: AsyncSession, centre_id: str) -> TrainingCentre | None:
    return await session.get(TrainingCentre, centre_id)


async def centre_by_code(session: AsyncSession, code: str) -> TrainingCentre | None:
    result = await session.execute(select(TrainingCentre).where(TrainingCentre.code == code))  # type: ignore[arg-type]
    return result.scalars().first()


async def list_centres(
    session: AsyncSession, *, region_prefix: str | None, after_code: str | None, limit: int
) -> list[TrainingCentre]:
    query = select(TrainingCentre)
    if region_prefix:
        query = query.where(TrainingCentre.region_code.startswith(region_prefix))  # type: ignore[attr-defined]
    if after_code is not None:
        query = query.where(TrainingCentre.code > after_code)  # type: ignore[arg-type]
    query = query.order_by(TrainingCentre.code).limit(limit + 1)  # type: ignore[arg-type]
    return list((await session.execute(query)).scalars().all())


async def batch_by_id(session: AsyncSession, batch_id: str, *, for_update: bool = False) -> Batch | None:
    query = select(Batch).where(Batch.id == batch_id)  # type: ignore[arg-type]
    if for_update:
        # serialises enrolment, attendance and closing of one batch (capacity holds under concurrency)
        query = query.with_for_update()
    return (await session.execute(query)).scalars().first()


async def list_batches(
    session: AsyncSession,
    *,
    centre_id: str | None,
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
        conditions.append(Batch.centre_id == centre_id)
    if status:
        conditions.append(Batch.status == status)
    if business_field:
        conditions.append(Batch.business_field == business_field)
    if region_prefix:
        conditions.append(Batch.region_code.startswith(region_prefix))  # type: ignore[attr-defined]
    if start_from:
        conditions.append(Batch.start_date >= start_from)
    if start_to:
        conditions.append(Batch.start_date <= start_to)
    if after is not None:
        after_date, after_id = after
        conditions.append(
            or_(Batch.start_date > after_date, and_(Batch.start_date == after_date, Batch.id > after_id))  # type: ignore[arg-type]
        )
    if conditions:
        query = query.where(and_(*conditions))
    query = query.order_by(Batch.start_date, Batch.id).limit(limit + 1)  # type: ignore[arg-type]
    return list((await session.execute(query)).scalars().all())


async def sessions_of(session: AsyncSession, batch_id: str) -> list[BatchSession]:
    query = (
        select(BatchSession)
        .where(BatchSession.batch_id == batch_id)  # type: ignore[arg-type]
        .order_by(BatchSession.session_date, BatchSession.module, BatchSession.id)  # type: ignore[arg-type]
    )
    return list((await session.execute(query)).scalars().all())


async def enrolled_count(session: AsyncSession, batch_id: str) -> int:
    query = (
        select(func.count())
        .select_from(Enrolment)
        .where(Enrolment.batch_id == batch_id, Enrolment.status.in_(("enrolled", "completed")))  # type: ignore[arg-type,attr-defined]
    )
    return int((await session.execute(query)).scalar_one())


async def enrolment(session: AsyncSession, batch_id: str, participant_id: str) -> Enrolment | None:
    query = select(Enrolment).where(
        Enrolment.batch_id == batch_id,  # type: ignore[arg-type]
        Enrolment.participant_id == participant_id,  # type: ignore[arg-type]
    )
    return (await session.execute(query)).scalars().first()


async def enrolments_of(session: AsyncSession, batch_id: str, *, status: str | None = None) -> list[Enrolment]:
    query = select(Enrolment).where(Enrolment.batch_id == batch_id)  # type: ignore[arg-type]
    if status:
        query = query.where(Enrolment.status == status)  # type: ignore[arg-type]
    query = query.order_by(Enrolment.enrolled_at, Enrolment.participant_id)  # type: ignore[arg-type]
    return list((await session.execute(query)).scalars().all())


async def attended_counts(session: AsyncSession, batch_id: str) -> dict[str, int]:
    """participant id -> sessions attended in the batch."""
    query = (
        select(Attendance.participant_id, func.count())
        .where(Attendance.batch_id == batch_id)  # type: ignore[arg-type]
        .group_by(Attendance.participant_id)  # type: ignore[arg-type]
    )
    return {row[0]: int(row[1]) for row in (await session.execute(query)).all()}


async def present_in_session(session: AsyncSession, session_id: str) -> set[str]:
    query = select(Attendance.participant_id).where(Attendance.session_id == session_id)  # type: ignore[arg-type]
    return set((await session.execute(query)).scalars().all())


async def eligibility(session: AsyncSession, participant_id: str) -> EligibleParticipant | None:
    return await session.get(EligibleParticipant, participant_id)
