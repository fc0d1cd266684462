"""The monev service definition handed to the kernel (routes, tables, handlers, jobs)."""

from pathlib import Path

from pena.definition import ServiceDefinition
from services.monev.api import router
from services.monev.handlers import BATCH_HANDLERS, BATCH_JOBS, HANDLERS, JOBS
from services.monev.models import MonevBase, table_registry

__all__ = ["MonevBase", "definition", "table_registry"]

definition = ServiceDefinition(
    name="monev",
    migrations=Path(__file__).parent / "migrations" / "versions",
    metadata=table_registry.metadata,
    routers=[router],
    handlers=dict(HANDLERS),
    batch_handlers=dict(BATCH_HANDLERS),
    jobs=dict(JOBS),
    batch_jobs=dict(BATCH_JOBS),
    description="Monev: follow-up tasks after training, assignment to facilitators, surveys and results.",
)
