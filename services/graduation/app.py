"""The graduation service definition handed to the kernel (routes, tables, handlers, startup)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from pena.runtime import ServiceRuntime
from pena.service import ServiceDefinition
from services.graduation import handlers, service
from services.graduation.api import router
from services.graduation.models import table_registry


async def load_seed(runtime: ServiceRuntime) -> None:
    """Seeds reference data and the default policy into an empty database (idempotent)."""
    seed = await asyncio.to_thread(service.read_seed)
    async with runtime.db.transaction() as session:
        await service.seed_reference_data(session, seed=seed, clock=runtime.clock)


definition = ServiceDefinition(
    name="graduation",
    migrations=Path(__file__).parent / "migrations" / "versions",
    metadata=table_registry.metadata,
    routers=[router],
    handlers={
        "monev.completed": handlers.on_monev_completed,
        "participant.registered": handlers.on_participant_facts,
        "participant.updated": handlers.on_participant_facts,
        "participant.status_changed": handlers.on_participant_status_changed,
    },
    on_startup=[load_seed],
    description="Graduation: policy and reference data, assessments, four-eyes decisions, appeals, statistics.",
)
