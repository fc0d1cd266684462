"""The participants service definition handed to the kernel (routes, tables, handlers, jobs)."""

from pathlib import Path

from pena.definition import ServiceDefinition
from services.participants.api import router
from services.participants.handlers import HANDLERS
from services.participants.imports import JOBS
from services.participants.models import ParticipantsBase, table_registry
from services.participants.regions import load_regions_if_empty

__all__ = ["ParticipantsBase", "definition", "table_registry"]

definition = ServiceDefinition(
    name="participants",
    migrations=Path(__file__).parent / "migrations" / "versions",
    metadata=table_registry.metadata,
    routers=[router],
    handlers=dict(HANDLERS),
    jobs=dict(JOBS),
    on_startup=[load_regions_if_empty],
    description="The KPM registry: participants, identity (encrypted), status, history, bulk import.",
)
