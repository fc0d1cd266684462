"""Policy versions: published as data, never edited (the rules themselves are in policy.py)."""

from __future__ import annotations

from sqlmodel.ext.asyncio.session import AsyncSession

from pena.audit import record_audit
from pena.auth import Principal
from pena.clock import Clock
from pena.ids import new_id
from pena.problems import field_error, not_found
from services.graduation import queries
from services.graduation.models import Policy
from services.graduation.schemas import PolicyCreate


async def publish_policy(session: AsyncSession, *, body: PolicyCreate, actor: Principal, clock: Clock) -> Policy:
    now = clock.now()
    await queries.lock_key(session, "graduation-policy")
    previous = await queries.latest_policy_version(session)
    policies = await queries.list_policies(session)
    if policies and body.effective_from < policies[-1].effective_from:
        raise field_error(
            "effective_from",
            "not_before_previous_version",
            f"effective_from must not precede version {previous}'s ({policies[-1].effective_from})",
        )
    policy = Policy(
        id=new_id(),
        version=previous + 1,
        effective_from=body.effective_from,
        criteria=body.criteria.model_dump(),
        note=body.note,
        created_at=now,
        created_by=actor.subject,
    )
    session.add(policy)
    await session.flush()
    await record_audit(
        session,
        actor=actor,
        action="graduation.policy.published",
        subject_type="policy",
        subject_id=policy.id,
        details={"version": policy.version, "effective_from": policy.effective_from.isoformat()},
    )
    return policy


async def list_policies(session: AsyncSession) -> list[Policy]:
    return await queries.list_policies(session)


async def read_policy(session: AsyncSession, *, policy_id: str) -> Policy:
    policy = await queries.get_policy(session, policy_id)
    if policy is None:
        raise not_found("policy", policy_id)
    return policy
