"""The service catalogue: which services exist, where their definitions live, their default ports,
and the app that serves one of them, or all four in one process (`pena dev`)."""

from __future__ import annotations

import importlib
from typing import Literal

from fastapi import FastAPI

from pena.definition import ServiceDefinition
from pena.settings import Settings

SERVICE_MODULES = {
    "participants": "services.participants.app",
    "training": "services.training.app",
    "monev": "services.monev.app",
    "graduation": "services.graduation.app",
}
DEFAULT_PORTS = {"participants": 8001, "training": 8002, "monev": 8003, "graduation": 8004}
# A served process's role (`pena serve <service> --role`): `all` (the default) the HTTP API and the
# background loops (outbox relay, Kafka consumers, scheduler, live gauges) together; `api` the HTTP API
# alone (`Runtime(workers=False)`: nothing else on the request loop); `workers` the loops alone, with
# only the operations routes (health, readiness, metrics). A deployment can then run and scale a
# service's API and its workers as separate processes: the outbox hands the API's events to the
# workers' relay (docs/operations.md).
ServeRole = Literal["all", "api", "workers"]
SERVE_ROLES: tuple[ServeRole, ...] = ("all", "api", "workers")
# `pena serve <service> --role workers` (operations routes only) listens 1000 above the service's port
WORKERS_PORT_OFFSET = 1000
# its relay's gathering time unless PENA_RELAY_GATHER_SECONDS says otherwise (docs/benchmarks.md)
WORKERS_RELAY_GATHER_SECONDS = 0.05


def load_definitions(names: list[str] | None = None) -> list[ServiceDefinition]:
    chosen = names or list(SERVICE_MODULES)
    unknown = [n for n in chosen if n not in SERVICE_MODULES]
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)}; one of {', '.join(SERVICE_MODULES)}")
    return [importlib.import_module(SERVICE_MODULES[n]).definition for n in chosen]


def build_app(
    names: list[str] | None = None,
    *,
    settings: Settings | None = None,
    migrate_on_start: bool = True,
    role: ServeRole = "all",
) -> FastAPI:
    """The app serving `names`; `role` (SERVE_ROLES): `all` the API and the background loops
    (relay, consumers, scheduler) in one process, `api` the API alone, `workers` the loops alone with
    the operations routes (health, readiness, metrics)."""
    from pena.http.app import create_app
    from pena.runtime import Runtime

    settings = settings or Settings()
    definitions = load_definitions(names)
    title = "PENA platform API" if len(definitions) > 1 else f"PENA {definitions[0].name} API"
    if role == "workers":
        title += " (workers)"
        if "relay_gather_seconds" not in settings.model_fields_set:
            # the relay alone in its process would run one claim-publish-mark cycle per commit (about a
            # millisecond of CPU each); gathering lets one cycle carry the commits of 50 ms
            settings = settings.model_copy(update={"relay_gather_seconds": WORKERS_RELAY_GATHER_SECONDS})
    runtime = Runtime(settings, definitions, migrate_on_start=migrate_on_start, workers=role != "api")
    return create_app(runtime, title=title, api=role != "workers")
