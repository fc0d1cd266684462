"""Every route of every service declares its access policy (issue 13, item 1): each of the four
services' apps is built as it is served (`pena serve <service>`) and walked route by route, through
the routes and through its OpenAPI document. A failure lists every undeclared route (method and path)."""

from __future__ import annotations

import pytest

from composition.catalog import SERVICE_MODULES, build_app
from pena.access import publish_policies, undeclared_operations, undeclared_routes
from pena.settings import Settings


@pytest.mark.parametrize("service", sorted(SERVICE_MODULES))
def test_every_route_of_the_service_declares_a_policy(service: str) -> None:
    app = build_app([service], settings=Settings(environment="test", _env_file=None))
    missing = undeclared_routes(app)
    publish_policies(app)
    missing_in_openapi = undeclared_operations(app.openapi())
    listing = "\n".join(f"  {route}" for route in missing)
    assert not missing, f"{service}: {len(missing)} route(s) without a declared policy:\n{listing}"
    assert not missing_in_openapi, f"{service}: operations without x-pena-policy: {missing_in_openapi}"
