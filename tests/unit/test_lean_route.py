"""pena.http.lean.LeanRoute: the fast path answers exactly what FastAPI's own handler answers. Two apps
with the same route (body model, policy-like dependency over an authenticating one, an optional
header, the kernel's app-wide NUL screening and problem handlers), one built with LeanRoute and one
with FastAPI's APIRoute, get the same requests; every answer (status, body, headers that matter) must
be equal, and the fast path must have answered exactly the plain valid ones."""

from __future__ import annotations

import json
from datetime import date
from typing import Annotated, Any, Literal

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Request, Response
from fastapi.routing import APIRoute, iter_route_contexts
from pydantic import BaseModel, Field

from composition.catalog import build_app
from pena.http.lean import LEAN_SCOPE_KEY, LeanRoute
from pena.http.screening import refuse_nul_characters
from pena.idempotency import IdempotencyKey
from pena.problems import Problem, install_problem_handlers
from pena.settings import Settings


class Consent(BaseModel):
    purpose: str = Field(min_length=1)
    given_on: date


class PersonCreate(BaseModel):
    nik: str = Field(pattern=r"^\d{16}$")
    birth_date: date
    sex: Literal["F", "M"]
    consent: Consent
    programmes: list[str] = []


calls: list[str] = []


async def authenticated(request: Request) -> str:
    calls.append("authenticated")
    header = request.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        raise Problem(401, "Unauthorized", "a bearer token is required", type_="unauthorized")
    return header.removeprefix("Bearer ")


async def writer(request: Request, principal: Annotated[str, Depends(authenticated)]) -> str:
    calls.append("policy")
    if principal == "reader":
        raise Problem(403, "Forbidden", "needs people:write", type_="forbidden")
    request.state.reach = "all"
    return principal


def _app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI(dependencies=[Depends(refuse_nul_characters)])
    install_problem_handlers(app)
    router = APIRouter(prefix="/v1/people", route_class=route_class)

    @router.post("", status_code=201, response_model=PersonCreate)
    async def register(
        body: PersonCreate,
        request: Request,
        principal: Annotated[str, Depends(writer)],
        idempotency_key: IdempotencyKey = None,
    ) -> Response:
        answer = {"person": body.model_dump(mode="json"), "by": principal, "key": idempotency_key}
        answer["reach"] = getattr(request.state, "reach", None)
        lean = "yes" if request.scope.get(LEAN_SCOPE_KEY) else "no"
        return Response(json.dumps(answer), status_code=201, media_type="application/json", headers={"X-Lean": lean})

    app.include_router(router)
    return app


VALID: dict[str, Any] = {
    "nik": "3271014501900001",
    "birth_date": "1990-01-05",
    "sex": "F",
    "consent": {"purpose": "PENA", "given_on": "2026-01-05"},
}
JSON = {"Content-Type": "application/json", "Authorization": "Bearer writer"}

# (case, body bytes, headers, the fast path answers it)
CASES = [
    ("valid", json.dumps(VALID).encode(), JSON, True),
    ("valid, programmes", json.dumps({**VALID, "programmes": ["PKH"]}).encode(), JSON, True),
    ("invalid fields", json.dumps({**VALID, "sex": "X", "birth_date": "1990-02-30"}).encode(), JSON, False),
    ("missing field", json.dumps({k: v for k, v in VALID.items() if k != "consent"}).encode(), JSON, False),
    ("malformed JSON", b'{"nik": ', JSON, False),
    ("not an object", b"[1, 2]", JSON, False),
    ("empty body", b"", JSON, False),
    ("no token", json.dumps(VALID).encode(), {"Content-Type": "application/json"}, False),
    ("no token, invalid body", b'{"sex": 1}', {"Content-Type": "application/json"}, False),
    ("forbidden", json.dumps(VALID).encode(), {**JSON, "Authorization": "Bearer reader"}, False),
    (
        "NUL in a value",
        json.dumps({**VALID, "consent": {**VALID["consent"], "purpose": "a\x00b"}}).encode(),
        JSON,
        False,
    ),
    ("text/plain", json.dumps(VALID).encode(), {**JSON, "Content-Type": "text/plain"}, False),
    ("charset", json.dumps(VALID).encode(), {**JSON, "Content-Type": "application/json; charset=utf-8"}, False),
    ("idempotency key", json.dumps(VALID).encode(), {**JSON, "Idempotency-Key": "k-1"}, False),
    ("idempotency key too long", json.dumps(VALID).encode(), {**JSON, "Idempotency-Key": "k" * 500}, False),
]


async def _answer(app: FastAPI, body: bytes, headers: dict[str, str]) -> tuple[int, object, str | None, str]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
        response = await client.post("/v1/people", content=body, headers=headers)
    try:
        parsed: object = response.json()
    except ValueError:
        parsed = response.text
    return response.status_code, parsed, response.headers.get("content-type"), response.headers.get("x-lean", "-")


@pytest.mark.parametrize(("case", "body", "headers", "fast"), CASES, ids=[c[0] for c in CASES])
async def test_the_lean_route_answers_as_fastapi_does(
    case: str, body: bytes, headers: dict[str, str], fast: bool
) -> None:
    lean_app, plain_app = _app(LeanRoute), _app(APIRoute)
    calls.clear()
    status, answer, media, lean = await _answer(lean_app, body, headers)
    lean_calls = list(calls)
    calls.clear()
    status_plain, answer_plain, media_plain, plain = await _answer(plain_app, body, headers)
    assert (status, answer, media) == (status_plain, answer_plain, media_plain), case
    assert lean_calls == calls  # the same dependencies ran, once each, in the same order
    assert plain in ("no", "-")
    assert lean == ("yes" if fast else "no" if status == 201 else "-"), case
    if fast:
        assert status == 201
        assert lean_calls == ["authenticated", "policy"]


async def test_dependency_overrides_take_fastapis_handler() -> None:
    app = _app(LeanRoute)

    async def reader() -> str:
        return "overridden"

    app.dependency_overrides[writer] = reader
    status, answer, _, lean = await _answer(app, json.dumps(VALID).encode(), JSON)
    assert (status, lean) == (201, "no")
    assert isinstance(answer, dict)
    assert answer["by"] == "overridden"


def test_only_plain_routes_get_the_fast_path() -> None:
    """The participants' registration is planned; a route with a session (a `yield` dependency),
    path or query parameters, or a model answer keeps FastAPI's handler alone."""
    app = build_app(["participants"], settings=Settings(environment="test", _env_file=None))
    planned: set[str] = set()
    for context in iter_route_contexts(app.routes):
        route = getattr(context, "original_route", context)
        if getattr(route, "lean", False):
            planned |= {f"{method} {context.path}" for method in context.methods or ()}
    assert planned == {"POST /v1/participants"}
