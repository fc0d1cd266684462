"""The participants service definition handed to the kernel (routes, tables, handlers, jobs)."""

from pathlib import Path

from pena.definition import ServiceDefinition
from services.participants.api import household_router, router
from services.participants.handlers import HANDLERS, JOBS, STARTUP
from services.participants.models import ParticipantsBase, table_registry

__all__ = ["ParticipantsBase", "definition", "table_registry"]

definition = ServiceDefinition(
    name="participants",
    migrations=Path(__file__).parent / "migrations" / "versions",
    metadata=table_registry.metadata,
    routers=[router, household_router],
    handlers=dict(HANDLERS),
    jobs=dict(JOBS),
    on_startup=list(STARTUP),
    description="The KPM registry: participants, identity (encrypted), status, history, bulk import.",
)
