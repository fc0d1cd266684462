"""The graduation service definition handed to the kernel (routes, tables, handlers, startup)."""

from pathlib import Path

from pena.definition import ServiceDefinition
from services.graduation.api import router
from services.graduation.handlers import BATCH_HANDLERS, HANDLERS, STARTUP
from services.graduation.models import GraduationBase, table_registry

__all__ = ["GraduationBase", "definition", "table_registry"]

definition = ServiceDefinition(
    name="graduation",
    migrations=Path(__file__).parent / "migrations" / "versions",
    metadata=table_registry.metadata,
    routers=[router],
    handlers=dict(HANDLERS),
    batch_handlers=dict(BATCH_HANDLERS),
    on_startup=list(STARTUP),
    description="Graduation: policy and reference data, assessments, four-eyes decisions, appeals, statistics.",
)
