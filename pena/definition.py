"""What a service hands to the kernel: its name, tables, routers, event handlers and scheduled-job
handlers. The kernel runs the rest (database, relay, consumers, scheduler, HTTP plumbing)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import APIRouter
from sqlalchemy import MetaData

from pena.consumer import BatchHandler, Handler
from pena.contracts import BY_NAME
from pena.scheduler import BatchJobHandler, JobHandler

if TYPE_CHECKING:
    from pena.runtime import ServiceRuntime


@dataclass
class ServiceDefinition:
    name: str
    metadata: MetaData
    routers: list[APIRouter] = field(default_factory=list)
    handlers: dict[str, Handler] = field(default_factory=dict)  # event name -> plain async function
    # optional set-based forms of some handlers, used by the Kafka consumer for a fetched run of events
    batch_handlers: dict[str, BatchHandler] = field(default_factory=dict)
    jobs: dict[str, JobHandler] = field(default_factory=dict)  # scheduled job kind -> handler
    # optional set-based forms of some job handlers, used by the scheduler for the claimed jobs of a kind
    batch_jobs: dict[str, BatchJobHandler] = field(default_factory=dict)
    on_startup: list[Callable[[ServiceRuntime], Awaitable[None]]] = field(default_factory=list)
    # folder of the service's Alembic revisions; None (test doubles only) creates tables directly
    migrations: Path | None = None
    description: str = ""

    @property
    def consumes_from(self) -> list[str]:
        """Services whose topics this one subscribes to (derived from the handlers' event names)."""
        return sorted({BY_NAME[name].service for name in self.handlers})
