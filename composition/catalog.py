"""The service catalogue: which services exist, where their definitions live, their default ports,
and the app that serves one of them, or all four in one process (`pena dev`)."""

from __future__ import annotations

import importlib

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


def load_definitions(names: list[str] | None = None) -> list[ServiceDefinition]:
    chosen = names or list(SERVICE_MODULES)
    unknown = [n for n in chosen if n not in SERVICE_MODULES]
    if unknown:
        raise SystemExit(f"unknown service(s): {', '.join(unknown)}; one of {', '.join(SERVICE_MODULES)}")
    return [importlib.import_module(SERVICE_MODULES[n]).definition for n in chosen]


def build_app(
    names: list[str] | None = None, *, settings: Settings | None = None, migrate_on_start: bool = True
) -> FastAPI:
    from pena.http.app import create_app
    from pena.runtime import Runtime

    settings = settings or Settings()
    definitions = load_definitions(names)
    title = "PENA platform API" if len(definitions) > 1 else f"PENA {definitions[0].name} API"
    return create_app(Runtime(settings, definitions, migrate_on_start=migrate_on_start), title=title)
