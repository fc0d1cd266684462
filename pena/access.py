"""One access policy for every service: a principal's *reach* (which records it may touch), derived in
one place from its role and claims, and the per-route policy declaration (permission + how the route
scopes its objects).

Reach kinds (see docs/kernel.md, "Access model"):

- ``national``: every record. Only by an explicit role (``admin``; ``integrator`` when its token
  carries no unit) or the explicit claim ``unit: "national"`` on a region-scoped role. Never by a
  missing, empty or malformed unit.
- ``region``: records whose Kemendagri region code starts with a prefix (a province ``13``, regency
  ``13.71`` / ``1371``, district ``137101`` or village ``1371011001``; dotted and plain forms are the
  same). Verifiers and approvers (and an integrator narrowed by a unit).
- ``centre``: one training centre (centre operators; ``unit`` = the centre id).
- ``assigned``: a facilitator's own assignments (records whose assignee is the token's ``sub``), and,
  for records that have no assignee (participants, assessments), the region of the token's unit.
- ``none``: nothing. Every token that fits none of the above, including an unknown role or a unit that
  does not parse for the role.

Every check fails closed: an unparseable value (record code, requested prefix, claim) matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request

try:
    from fastapi.routing import iter_route_contexts
except ImportError:  # FastAPI before included routers became lazy
    iter_route_contexts = None  # type: ignore[assignment]

from pena.auth import Principal, authenticated
from pena.problems import Problem, field_error

ReachKind = Literal["national", "region", "centre", "assigned", "none"]
RouteScope = Literal["national", "region", "centre", "assigned", "none"]

NATIONAL_CLAIM = "national"
"""The explicit `unit` claim value that gives a region-scoped role national reach."""

# Kemendagri codes: province 2 digits, regency 2+2, district 2+2+2, village 2+2+2+4
_LEVELS = (2, 4, 6, 10)
_DOTTED = re.compile(r"\d{2}(\.\d{2}(\.\d{2}(\.\d{4})?)?)?")
_CENTRE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,39}")

# precedence when a token holds several roles: one reach per token, the first role that applies
_REGION_ROLES = ("verifier", "approver")


@dataclass(frozen=True)
class Reach:
    kind: ReachKind
    region: str | None = None
    """`region`: the digit prefix. `assigned`: the facilitator's region for records without an
    assignee ("" = every region, by the explicit national claim; None = none)."""
    centre: str | None = None
    """`centre`: the centre id."""
    subject: str | None = None
    """`assigned`: the token's subject, whose assignments are reachable."""
    reason: str = ""
    """`none`: why (for the 403 detail and logs; names the claim, never a record)."""

    @property
    def is_national(self) -> bool:
        return self.kind == "national"


NOWHERE = Reach("none", reason="no role with a reach")


def region_code(value: object) -> str | None:
    """A Kemendagri region code in plain digits (`13.71` and `1371` -> `1371`), or None when the value
    is not one: a string of 2, 4, 6 or 10 digits, or the dotted form of one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    if _DOTTED.fullmatch(text):
        return text.replace(".", "")
    if text.isascii() and text.isdigit() and len(text) in _LEVELS:
        return text
    return None


def region_prefix(value: object) -> str | None:
    """A requested list filter as a digit prefix: any 1-10 digits (a filter can only narrow), dotted
    or plain; None when it is not one."""
    if not isinstance(value, str):
        return None
    text = value.strip()
    plain = text.replace(".", "") if _DOTTED.fullmatch(text) else text
    if plain.isascii() and plain.isdigit() and 1 <= len(plain) <= 10:
        return plain
    return None


def _unit_claim(principal: Principal) -> object:
    unit = principal.unit
    if unit is None:
        unit = principal.claims.get("unit")
    return unit


def _region_reach(unit: object, role: str) -> Reach:
    if unit is None or (isinstance(unit, str) and not unit.strip()):
        return Reach("none", reason=f"a {role} token needs a unit claim (a region code or {NATIONAL_CLAIM!r})")
    if isinstance(unit, str) and unit.strip().lower() == NATIONAL_CLAIM:
        return Reach("national")
    code = region_code(unit)
    if code is None:
        return Reach("none", reason=f"the unit claim of a {role} token is not a region code")
    return Reach("region", region=code)


def reach_of(principal: Principal) -> Reach:
    """The one place a principal's reach is decided (role precedence: admin, integrator, verifier /
    approver, centre_operator, facilitator). Fails closed: a missing, empty or malformed unit never
    widens a reach."""
    unit = _unit_claim(principal)
    if principal.has_role("admin"):
        return Reach("national")
    if principal.has_role("integrator"):
        # national by its role; a unit narrows it, and a unit that does not parse gives nothing
        if unit is None:
            return Reach("national")
        return _region_reach(unit, "integrator")
    for role in _REGION_ROLES:
        if principal.has_role(role):
            return _region_reach(unit, role)
    if principal.has_role("centre_operator"):
        if isinstance(unit, str) and _CENTRE_ID.fullmatch(unit) and unit.lower() != NATIONAL_CLAIM:
            return Reach("centre", centre=unit)
        return Reach("none", reason="a centre operator token needs the centre id as unit")
    if principal.has_role("facilitator"):
        region: str | None = None
        if isinstance(unit, str) and unit.strip().lower() == NATIONAL_CLAIM:
            region = ""
        elif unit is not None:
            region = region_code(unit)
        return Reach("assigned", region=region, subject=principal.subject)
    return NOWHERE


# ------------------------------------------------------------------ object checks


def covers_region(reach: Reach, code: str | None) -> bool:
    """May this reach touch a record of region `code`? (Centre reach: no; the training service
    checks a centre's own regions.) A record code that does not parse is covered by national reach
    only."""
    if reach.kind == "national":
        return True
    if reach.kind not in ("region", "assigned") or reach.region is None:
        return False
    plain = region_code(code)
    return plain is not None and plain.startswith(reach.region)


def covers_centre(reach: Reach, centre_id: str | None) -> bool:
    if reach.kind == "national":
        return True
    return reach.kind == "centre" and centre_id is not None and centre_id == reach.centre


def covers_assigned(reach: Reach, *, assignee: str | None, region_code: str | None) -> bool:
    """A record with an assignee (a monev task): a facilitator reaches only their own; region reach
    reaches its region's; national all."""
    if reach.kind == "assigned":
        return assignee is not None and assignee == reach.subject
    return covers_region(reach, region_code)


def list_region_prefix(reach: Reach, requested: str | None) -> str | None:
    """The region prefix a list may filter on: "" = every region, digits = that prefix, None = the
    list is empty (the request lies wholly outside the reach, or the reach has no regions). A
    requested prefix that is not digits is a 422 naming `region_prefix`."""
    asked: str | None = None
    if requested is not None and requested.strip():
        asked = region_prefix(requested)
        if asked is None:
            raise field_error("region_prefix", "region_code", "region_prefix must be digits (e.g. 13 or 13.71)")
    if reach.kind == "national":
        return asked or ""
    if reach.kind not in ("region", "assigned") or reach.region is None:
        return None
    own = reach.region
    if asked is None or asked.startswith(own):
        return asked if asked is not None else own
    if own.startswith(asked):
        return own
    return None


# ------------------------------------------------------------------ route policy


@dataclass(frozen=True)
class Policy:
    permission: str | None
    """The scope the caller's token must hold; None for a public route."""
    scope: RouteScope | Literal["public"]
    """How the route scopes its objects: by `region`, `centre`, `assigned` (own assignments, else
    region), `national` (only national reach may call), `none` (not object-scoped: reference data),
    or `public` (no token: health, readiness, metrics)."""


POLICY_ATTR = "__pena_policy__"


def _forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, type_="forbidden")


def policy(permission: str, scope: RouteScope) -> Any:
    """A route's declared access policy, as a dependency (`dependencies=[policy(...)]` or
    `principal: Annotated[Principal, policy(...)]`): authenticates (and rate-limits) the caller,
    refuses 403 without `permission`, refuses 403 a token whose reach is `none` on an object-scoped
    route and one without national reach on a `national` route, and leaves the reach in
    `request.state.reach`. `undeclared_routes` finds routes without one."""

    async def dependency(request: Request, principal: Annotated[Principal, Depends(authenticated)]) -> Principal:
        principal.require(permission)
        reach = reach_of(principal)
        if scope != "none":
            if reach.kind == "none":
                raise _forbidden(f"this token reaches no records: {reach.reason}")
            if scope == "national" and not reach.is_national:
                raise _forbidden("this action needs national reach")
        request.state.reach = reach
        return principal

    setattr(dependency, POLICY_ATTR, Policy(permission, scope))
    return Depends(dependency)


def public() -> Any:
    """Declares a route public (no token): health, readiness, metrics, documentation."""

    async def dependency() -> None:
        return None

    setattr(dependency, POLICY_ATTR, Policy(None, "public"))
    return Depends(dependency)


async def request_reach(principal: Annotated[Principal, Depends(authenticated)]) -> Reach:
    """Dependency: the authenticated caller's reach (`ReachDep`)."""
    return reach_of(principal)


def _declared(dependant: Any) -> Policy | None:
    found = getattr(dependant.call, POLICY_ATTR, None) if dependant.call is not None else None
    if isinstance(found, Policy):
        return found
    for sub in dependant.dependencies:
        inner = _declared(sub)
        if inner is not None:
            return inner
    return None


def policy_of(route: Any) -> Policy | None:
    """The policy a route declares (on the route, its router or the app), or None."""
    dependant = getattr(route, "dependant", None)
    return _declared(dependant) if dependant is not None else None


# FastAPI's own documentation routes and the kernel's probes: public unless a policy says otherwise
DEFAULT_PUBLIC = frozenset(
    {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc", "/healthz", "/readyz", "/metrics"}
)


def _routes(app: FastAPI) -> list[Any]:
    """Every route of the app with the dependencies it runs with. FastAPI >= 0.16x keeps included
    routers lazily (`iter_route_contexts` resolves them, router dependencies included); before
    that `app.routes` is already flat."""
    if iter_route_contexts is not None:
        return list(iter_route_contexts(app.routes))
    return list(app.routes)


def route_policies(app: FastAPI) -> dict[str, Policy | None]:
    """`"METHOD /path"` -> its declared policy (None: undeclared) for every API route of an app."""
    found: dict[str, Policy | None] = {}
    for route in _routes(app):
        if hasattr(route, "dependant"):
            for method in sorted(route.methods or ()):
                found[f"{method} {route.path}"] = policy_of(route)
    return found


def undeclared_routes(app: FastAPI, *, public_paths: Iterable[str] = DEFAULT_PUBLIC) -> list[str]:
    """Every route of the app (`"METHOD /path"`, or the path of a non-API route) without a declared
    policy, except the given public paths. A test asserts this is empty for each service."""
    allowed = set(public_paths)
    missing: list[str] = []
    for route in _routes(app):
        path = getattr(route, "path", None)
        if path in allowed:
            continue
        if hasattr(route, "dependant"):
            if policy_of(route) is None:
                missing += [f"{method} {path}" for method in sorted(route.methods or ())]
        elif path is not None:
            missing.append(str(path))
    return missing


HTTP_METHODS = ("get", "put", "post", "delete", "patch", "head", "options", "trace")


def publish_policies(app: FastAPI) -> None:
    """Makes the app's OpenAPI document carry each operation's declared policy as `x-pena-policy`
    (`{"permission": ..., "scope": ...}`), so clients and `undeclared_operations` can read it."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()
        paths = document.get("paths", {})
        for key, declared in route_policies(app).items():
            method, _, path = key.partition(" ")
            operation = paths.get(path, {}).get(method.lower())
            if operation is not None and declared is not None:
                operation["x-pena-policy"] = {"permission": declared.permission, "scope": declared.scope}
        return document

    app.openapi = openapi  # type: ignore[method-assign]


def undeclared_operations(document: dict[str, Any]) -> list[str]:
    """`"METHOD /path"` of every operation in an OpenAPI document without `x-pena-policy`."""
    return [
        f"{method.upper()} {path}"
        for path, item in document.get("paths", {}).items()
        for method, operation in item.items()
        if method in HTTP_METHODS and "x-pena-policy" not in operation
    ]


ReachDep = Annotated[Reach, Depends(request_reach)]
