"""The one-process app (`pena dev`) composes all four services: their routes must not collide,
and every service keeps to its own path prefix."""

from __future__ import annotations

from collections import Counter

from fastapi.routing import APIRoute

from composition.catalog import SERVE_ROLES, SERVICE_MODULES, WORKERS_RELAY_GATHER_SECONDS, build_app, load_definitions
from pena.settings import Settings

PREFIXES = {
    "participants": ("/v1/participants",),
    "training": ("/v1/training-centres", "/v1/batches"),
    "monev": ("/v1/monev",),
    "graduation": ("/v1/graduation",),
}


def test_routes_of_the_four_services_do_not_collide() -> None:
    routes = [
        (method, route.path)
        for definition in load_definitions(list(SERVICE_MODULES))
        for router in definition.routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    ]
    duplicates = [key for key, n in Counter(routes).items() if n > 1]
    assert duplicates == []
    assert len(routes) > 30
    app = build_app(settings=Settings(environment="test"))  # the composed app builds and documents them all
    documented = {(m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops}
    assert set(routes) <= documented


def test_each_service_stays_under_its_own_prefixes() -> None:
    for definition in load_definitions(list(SERVICE_MODULES)):
        for router in definition.routers:
            for route in router.routes:
                assert isinstance(route, APIRoute)
                assert route.path.startswith(PREFIXES[definition.name]), (definition.name, route.path)


def test_serve_roles_split_the_api_from_the_background_loops() -> None:
    """`pena serve <service> --role`: `all` (default) API + loops, `api` no loops, `workers` no API."""
    settings = Settings(environment="test")
    shapes = {}
    for role in SERVE_ROLES:
        app = build_app(["participants"], settings=settings, role=role)
        paths = set(app.openapi()["paths"])
        relay = app.state.runtime.services["participants"].relay
        shapes[role] = (
            app.state.runtime.workers,
            "/v1/participants" in paths,
            "/readyz" in paths,
            relay.gather_seconds,
        )
    assert shapes == {
        "all": (True, True, True, 0.0),
        "api": (False, True, True, 0.0),
        "workers": (True, False, True, WORKERS_RELAY_GATHER_SECONDS),  # alone in its process, the relay gathers
    }
    explicit = build_app(
        ["participants"], settings=Settings(environment="test", relay_gather_seconds=0), role="workers"
    )
    assert explicit.state.runtime.services["participants"].relay.gather_seconds == 0
