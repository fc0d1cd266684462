"""A route class for hot routes: a request that FastAPI would accept goes to the endpoint without
FastAPI's general dependency solver; any other request takes FastAPI's own handler unchanged.

FastAPI's per-request machinery (content-type parsing through `email.message`, `solve_dependencies`
with its caches, sub-dependency stacks and error collection, the endpoint context) costs ~80-100 us of
CPU per request on this machine for a route with a body, a policy and a header (docs/benchmarks.md,
"Registration: a lean route ..."). `LeanRoute` keeps the route exactly as declared (the OpenAPI
document, the policy that tests/unit/test_route_policies.py reads, the validation errors) and adds a
fast path used only when everything is plain:

- at build time: the route's dependencies (the app's, the router's and the route's own, as FastAPI
  resolved them) are all `async def` functions of the `Request` and of other such dependencies (no
  `yield`, no query, path, cookie or security parameters, no overrides), its body is one JSON model,
  its header parameters are optional, and the endpoint is annotated to return a `Response`;
- per request: the content type is exactly `application/json`, no declared header is sent, the body
  parses and validates with the route's own body field (FastAPI's `ModelField.validate`, as FastAPI
  calls it), and no dependency override is installed.

Then the dependencies run in FastAPI's order (the app's first, each once per request as with
`use_cache`) and the endpoint is called with the same arguments FastAPI would pass. A dependency's
exception (401, 403, 422 for a NUL character) propagates as it would from FastAPI's solver. In every
other case (a validation error, an Idempotency-Key, another content type) the request goes to the
handler FastAPI built, which answers as before: the fast path never answers an error itself."""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_typed_return_annotation
from fastapi.routing import APIRoute, _effective_route_context_var

LEAN_SCOPE_KEY = "pena.lean"
Handler = Callable[[Request], Coroutine[Any, Any, Response]]


@dataclass(frozen=True)
class _Plan:
    """What the fast path calls: the endpoint's dependencies (plain request functions, in FastAPI's
    order) and how the endpoint's arguments are named."""

    dependencies: tuple[Dependant, ...]
    endpoint: Callable[..., Coroutine[Any, Any, Any]]
    body_field: Any
    body_name: str
    request_name: str | None
    headers: tuple[tuple[str, str], ...]  # (argument name, header name): all optional, passed None


def _plain(dependant: Dependant) -> bool:
    """An `async def` dependency of the Request and of other plain dependencies only."""
    call = dependant.call
    return (
        call is not None
        and inspect.iscoroutinefunction(call)
        and not (dependant.path_params or dependant.query_params or dependant.header_params)
        and not (dependant.cookie_params or dependant.body_params)
        and dependant.websocket_param_name is None
        and dependant.http_connection_param_name is None
        and dependant.response_param_name is None
        and dependant.background_tasks_param_name is None
        and dependant.security_scopes_param_name is None
        and not dependant.own_oauth_scopes
        and dependant.use_cache
        and all(_plain(sub) for sub in dependant.dependencies)
    )


def _plan(route: Any) -> _Plan | None:
    """The fast path's plan for a route (APIRoute or FastAPI's effective route of an included router),
    or None when the route is not plain enough to skip FastAPI's solver."""
    dependant: Dependant = route.dependant
    call = dependant.call
    if call is None or not inspect.iscoroutinefunction(call) or route.body_field is None:
        return None
    returns = get_typed_return_annotation(call)
    if not (inspect.isclass(returns) and issubclass(returns, Response)):
        return None
    if route._embed_body_fields or len(dependant.body_params) != 1:
        return None
    if dependant.path_params or dependant.query_params or dependant.cookie_params:
        return None
    if (
        dependant.websocket_param_name
        or dependant.http_connection_param_name
        or dependant.response_param_name
        or dependant.background_tasks_param_name
        or dependant.security_scopes_param_name
    ):
        return None
    if any(field.field_info.is_required() for field in dependant.header_params):
        return None
    if not all(_plain(sub) for sub in dependant.dependencies):
        return None
    return _Plan(
        dependencies=tuple(dependant.dependencies),
        endpoint=call,
        body_field=route.body_field,
        body_name=dependant.body_params[0].name,
        request_name=dependant.request_param_name,
        headers=tuple((field.name, field.alias) for field in dependant.header_params),
    )


async def _solve(dependant: Dependant, request: Request, solved: dict[Any, Any]) -> Any:
    """A plain dependency's value, its own plain dependencies first; each call once per request."""
    assert dependant.call is not None
    if dependant.call in solved:
        return solved[dependant.call]
    values: dict[str, Any] = {}
    for sub in dependant.dependencies:
        value = await _solve(sub, request, solved)
        if sub.name is not None:
            values[sub.name] = value
    if dependant.request_param_name is not None:
        values[dependant.request_param_name] = request
    result = await dependant.call(**values)
    solved[dependant.call] = result
    return result


def _overridden(request: Request) -> bool:
    return bool(getattr(request.app, "dependency_overrides", None))


class LeanRoute(APIRoute):
    """An APIRoute with the fast path above (`APIRouter(route_class=LeanRoute)`); routes it cannot
    plan keep FastAPI's handler alone (`lean` stays False)."""

    lean = False

    def get_route_handler(self) -> Handler:
        standard = super().get_route_handler()
        # an included router's route is built through its effective route (the app's and router's
        # dependencies added), as FastAPI's own get_route_handler reads it
        effective = _effective_route_context_var.get()
        route = effective if effective is not None and effective.original_route is self else self
        plan = _plan(route)
        if plan is None:
            return standard
        self.lean = True  # planned (tests check the hot routes are)

        async def handler(request: Request) -> Response:
            if request.headers.get("content-type") != "application/json" or _overridden(request):
                return await standard(request)
            if any(request.headers.get(header) is not None for _, header in plan.headers):
                return await standard(request)
            try:
                data = json.loads(await request.body())  # cached: the standard handler reads the same bytes
            except ValueError:
                return await standard(request)
            body, errors = plan.body_field.validate(data, {}, loc=("body",))
            if errors:
                return await standard(request)
            values: dict[str, Any] = {plan.body_name: body, **{name: None for name, _ in plan.headers}}
            if plan.request_name is not None:
                values[plan.request_name] = request
            solved: dict[Any, Any] = {}
            for dependency in plan.dependencies:
                value = await _solve(dependency, request, solved)
                if dependency.name is not None:
                    values[dependency.name] = value
            request.scope[LEAN_SCOPE_KEY] = True  # the fast path answered (tests read it)
            response = await plan.endpoint(**values)
            if not isinstance(response, Response):
                raise TypeError(f"{plan.endpoint.__name__} is a lean route and must return a Response")
            return response

        return handler
