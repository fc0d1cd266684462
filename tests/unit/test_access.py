"""The one access policy: role x claims -> reach, and what a reach covers and lists (fail closed)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import APIRouter, FastAPI

from pena.access import (
    Policy,
    Reach,
    covers_assigned,
    covers_centre,
    covers_region,
    list_region_prefix,
    policy,
    public,
    publish_policies,
    reach_of,
    region_code,
    route_policies,
    undeclared_operations,
    undeclared_routes,
)
from pena.auth import ROLE_SCOPES, Principal
from pena.problems import Problem

MISSING = object()


def principal(role: str | None, unit: Any = MISSING, sub: str = "s-1") -> Principal:
    roles = frozenset({role}) if role else frozenset()
    claims: dict[str, Any] = {"sub": sub}
    if unit is not MISSING:
        claims["unit"] = unit
    return Principal(
        subject=sub,
        client_id="c-1",
        roles=roles,
        scopes=frozenset(ROLE_SCOPES.get(role or "", set())),
        unit=claims.get("unit"),
        claims=claims,
    )


NONE = "none"
NATIONAL = Reach("national")

# role, unit claim (MISSING = no claim) -> (kind, region, centre, subject)
REACH_TABLE: list[tuple[str | None, Any, tuple[str, str | None, str | None, str | None]]] = [
    ("admin", MISSING, ("national", None, None, None)),
    ("admin", "", ("national", None, None, None)),
    ("admin", "abc", ("national", None, None, None)),
    ("admin", "1371", ("national", None, None, None)),
    ("integrator", MISSING, ("national", None, None, None)),
    ("integrator", "", (NONE, None, None, None)),
    ("integrator", "abc", (NONE, None, None, None)),
    ("integrator", "13.71", ("region", "1371", None, None)),
    ("integrator", "national", ("national", None, None, None)),
    ("verifier", MISSING, (NONE, None, None, None)),
    ("verifier", "", (NONE, None, None, None)),
    ("verifier", "   ", (NONE, None, None, None)),
    ("verifier", "abc", (NONE, None, None, None)),
    ("verifier", "137", (NONE, None, None, None)),  # not a Kemendagri level: refused, not widened
    ("verifier", "1", (NONE, None, None, None)),
    ("verifier", "13.7", (NONE, None, None, None)),
    ("verifier", 1371, (NONE, None, None, None)),  # a number, not a string claim
    ("verifier", ["1371"], (NONE, None, None, None)),
    ("verifier", "13.71", ("region", "1371", None, None)),
    ("verifier", "1371", ("region", "1371", None, None)),
    ("verifier", "13", ("region", "13", None, None)),
    ("verifier", "13.71.01.1001", ("region", "1371011001", None, None)),
    ("verifier", "national", ("national", None, None, None)),
    ("verifier", "NATIONAL", ("national", None, None, None)),
    ("verifier", "lpk-padang-1", (NONE, None, None, None)),
    ("approver", MISSING, (NONE, None, None, None)),
    ("approver", "1371", ("region", "1371", None, None)),
    ("centre_operator", MISSING, (NONE, None, None, None)),
    ("centre_operator", "", (NONE, None, None, None)),
    ("centre_operator", "national", (NONE, None, None, None)),
    ("centre_operator", "bad id with spaces", (NONE, None, None, None)),
    ("centre_operator", "lpk-padang-1", ("centre", None, "lpk-padang-1", None)),
    ("facilitator", MISSING, ("assigned", None, None, "s-1")),
    ("facilitator", "", ("assigned", None, None, "s-1")),
    ("facilitator", "abc", ("assigned", None, None, "s-1")),
    ("facilitator", "13.71", ("assigned", "1371", None, "s-1")),
    ("facilitator", "1371", ("assigned", "1371", None, "s-1")),
    ("facilitator", "national", ("assigned", "", None, "s-1")),
    (None, MISSING, (NONE, None, None, None)),
    (None, "national", (NONE, None, None, None)),  # a claim without a role gives nothing
]


@pytest.mark.parametrize(("role", "unit", "expected"), REACH_TABLE)
def test_reach_of_role_and_unit(role: str | None, unit: Any, expected: tuple[str, Any, Any, Any]) -> None:
    reach = reach_of(principal(role, unit))
    assert (reach.kind, reach.region, reach.centre, reach.subject) == expected
    if reach.kind == "none":
        assert reach.reason  # a none reach says why (names the claim)


def test_several_roles_take_the_first_by_precedence() -> None:
    both = Principal("s", None, frozenset({"facilitator", "verifier"}), frozenset(), unit="1371")
    assert reach_of(both) == Reach("region", region="1371")
    with_admin = Principal("s", None, frozenset({"facilitator", "admin"}), frozenset(), unit=None)
    assert reach_of(with_admin).is_national


PADANG = Reach("region", region="1371")
FACILITATOR = Reach("assigned", region="1371", subject="f-1")
FACILITATOR_NO_UNIT = Reach("assigned", region=None, subject="f-1")
CENTRE = Reach("centre", centre="lpk-1")
NOTHING = Reach("none", reason="test")

# reach, record region code -> covered
COVERS_REGION = [
    (NATIONAL, "1371011001", True),
    (NATIONAL, None, True),
    (PADANG, "1371011001", True),
    (PADANG, "13.71.01.1001", True),
    (PADANG, "1372011001", False),
    (PADANG, "13", False),  # a province record is wider than the regency
    (PADANG, None, False),
    (PADANG, "", False),
    (PADANG, "13x1011001", False),
    (FACILITATOR, "1371011001", True),
    (FACILITATOR, "1372011001", False),
    (FACILITATOR_NO_UNIT, "1371011001", False),
    (Reach("assigned", region="", subject="f"), "1371011001", True),
    (CENTRE, "1371011001", False),
    (NOTHING, "1371011001", False),
]


@pytest.mark.parametrize(("reach", "code", "covered"), COVERS_REGION)
def test_covers_region(reach: Reach, code: str | None, covered: bool) -> None:
    assert covers_region(reach, code) is covered


def test_covers_centre_and_assignments() -> None:
    assert covers_centre(NATIONAL, "lpk-9")
    assert covers_centre(CENTRE, "lpk-1")
    assert not covers_centre(CENTRE, "lpk-2")
    assert not covers_centre(CENTRE, None)
    assert not covers_centre(PADANG, "lpk-1")
    assert not covers_centre(NOTHING, "lpk-1")
    # a facilitator reaches their own tasks, in any region, and nobody else's
    assert covers_assigned(FACILITATOR, assignee="f-1", region_code="3201011001")
    assert not covers_assigned(FACILITATOR, assignee="f-2", region_code="1371011001")
    assert not covers_assigned(FACILITATOR, assignee=None, region_code="1371011001")
    # region reach reaches its region's tasks whoever holds them
    assert covers_assigned(PADANG, assignee="f-2", region_code="1371011001")
    assert not covers_assigned(PADANG, assignee="f-2", region_code="3201011001")
    assert covers_assigned(NATIONAL, assignee=None, region_code=None)
    assert not covers_assigned(NOTHING, assignee="s", region_code="1371011001")


# reach, requested prefix -> the prefix the list may use ("" = all, None = empty list)
LIST_PREFIX = [
    (NATIONAL, None, ""),
    (NATIONAL, "", ""),
    (NATIONAL, "13.71", "1371"),
    (NATIONAL, "137", "137"),
    (PADANG, None, "1371"),
    (PADANG, "13", "1371"),  # wider request narrows to the reach
    (PADANG, "1371", "1371"),
    (PADANG, "13.71.01", "137101"),
    (PADANG, "1372", None),  # wholly outside: nothing
    (PADANG, "32", None),
    (FACILITATOR, None, "1371"),
    (FACILITATOR_NO_UNIT, None, None),
    (CENTRE, None, None),
    (NOTHING, None, None),
    (NOTHING, "13", None),
]


@pytest.mark.parametrize(("reach", "requested", "expected"), LIST_PREFIX)
def test_list_region_prefix(reach: Reach, requested: str | None, expected: str | None) -> None:
    assert list_region_prefix(reach, requested) == expected


@pytest.mark.parametrize("bad", ["abc", "13-71", "1371011001999", "13.7x"])
def test_list_region_prefix_refuses_malformed_requests(bad: str) -> None:
    with pytest.raises(Problem) as caught:
        list_region_prefix(NATIONAL, bad)
    assert caught.value.status == 422
    assert [(e["field"], e["rule"]) for e in caught.value.errors or []] == [("region_prefix", "region_code")]


def test_region_code_forms() -> None:
    assert region_code("13.71") == region_code("1371") == "1371"
    assert region_code(" 13.71.01 ") == "137101"
    assert region_code("13.71.01.1001") == "1371011001"
    for bad in ("", "1", "137", "13.7", "13..71", "١٣٧١", "abcd", None, 1371):
        assert region_code(bad) is None


def test_undeclared_routes_are_found_and_declared_ones_are_not() -> None:
    router = APIRouter()

    @router.get("/v1/things", dependencies=[policy("participants:read", "region")])
    async def declared() -> dict[str, str]:
        return {}

    @router.get("/v1/bare")
    async def bare() -> dict[str, str]:
        return {}

    @router.get("/v1/open", dependencies=[public()])
    async def open_route() -> dict[str, str]:
        return {}

    app = FastAPI()
    app.include_router(router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {}

    @app.get("/v1/stray")
    async def stray() -> dict[str, str]:
        return {}

    assert undeclared_routes(app) == ["GET /v1/bare", "GET /v1/stray"]
    declared_policies = route_policies(app)
    assert declared_policies["GET /v1/things"] == Policy("participants:read", "region")
    assert declared_policies["GET /v1/open"] == Policy(None, "public")
    assert declared_policies["GET /v1/bare"] is None
    # a router-level declaration covers its routes
    guarded = APIRouter(dependencies=[policy("training:read", "centre")])

    @guarded.get("/v1/guarded")
    async def guarded_route() -> dict[str, str]:
        return {}

    app2 = FastAPI()
    app2.include_router(guarded)
    assert undeclared_routes(app2) == []


def test_the_openapi_document_carries_each_declared_policy() -> None:
    app = FastAPI()

    @app.get("/v1/things/{id}", dependencies=[policy("participants:read", "region")])
    async def declared(id: str) -> dict[str, str]:
        return {}

    @app.post("/v1/bare")
    async def bare() -> dict[str, str]:
        return {}

    publish_policies(app)
    document = app.openapi()
    operation = document["paths"]["/v1/things/{id}"]["get"]
    assert operation["x-pena-policy"] == {"permission": "participants:read", "scope": "region"}
    assert undeclared_operations(document) == ["POST /v1/bare"]
    assert undeclared_operations(app.openapi()) == ["POST /v1/bare"]  # a second build is the same
