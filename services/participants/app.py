"""The participants service definition handed to the kernel (routes, tables, handlers, jobs)."""

from pena.runtime import ServiceRuntime
from pena.service import ServiceDefinition
from services.participants.api import router
from services.participants.handlers import HANDLERS
from services.participants.imports import JOBS, remember_settings
from services.participants.models import ParticipantsBase, table_registry
from services.participants.regions import load_regions_if_empty

__all__ = ["ParticipantsBase", "definition", "table_registry"]


async def _remember_settings(service_runtime: ServiceRuntime) -> None:
    remember_settings(service_runtime.db.engine.url.render_as_string(hide_password=False), service_runtime.settings)


definition = ServiceDefinition(
    name="participants",
    metadata=table_registry.metadata,
    routers=[router],
    handlers=dict(HANDLERS),
    jobs=dict(JOBS),
    on_startup=[_remember_settings, load_regions_if_empty],
    description="The KPM registry: participants, identity (encrypted), status, history, bulk import.",
)
