"""The training service definition handed to the kernel (routes, tables, handlers, jobs)."""

from sqlalchemy.orm import registry
from sqlmodel import SQLModel

from pena.service import ServiceDefinition

# Each service keeps its tables on its own registry, so its database holds only its own tables.
table_registry = registry()


class TrainingBase(SQLModel, registry=table_registry):
    pass


definition = ServiceDefinition(name="training", metadata=table_registry.metadata)
