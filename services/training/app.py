"""The training service definition handed to the kernel (routes, tables, handlers, jobs)."""

from pathlib import Path

from pena.definition import ServiceDefinition
from services.training.api import batches, centres, imports
from services.training.handlers import BATCH_HANDLERS, HANDLERS, JOBS
from services.training.models import TrainingBase, table_registry

__all__ = ["TrainingBase", "definition", "table_registry"]

definition = ServiceDefinition(
    name="training",
    migrations=Path(__file__).parent / "migrations" / "versions",
    metadata=table_registry.metadata,
    routers=[centres, imports, batches],  # imports first: /v1/batches/imports/... before /v1/batches/{id}/...
    handlers=dict(HANDLERS),
    batch_handlers=dict(BATCH_HANDLERS),
    jobs=dict(JOBS),
    description="Training centres, batches (angkatan), enrolment, attendance and completion; backfill imports.",
)
