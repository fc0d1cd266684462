"""Input PostgreSQL cannot store: text holding U+0000 is refused at the door with its place named
(422 problem+json), instead of failing deep in a use case as a database error."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from fastapi import Request

from pena.problems import Problem

NUL = "\x00"


def _nul_paths(value: Any, path: str = "") -> list[str]:
    """Dotted paths (list items by index) of the strings and keys in parsed JSON that hold U+0000."""
    if isinstance(value, str):
        return [path] if NUL in value else []
    if isinstance(value, dict):
        found = []
        for key, item in value.items():
            inner = f"{path}.{key}" if path else str(key)
            found += [inner] if NUL in str(key) else _nul_paths(item, inner)
        return found
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _nul_paths(item, f"{path}.{i}" if path else str(i))]
    return []


async def refuse_nul_characters(request: Request) -> None:
    """PostgreSQL text cannot hold U+0000: a value carrying it is refused at the door with its place
    named (422), instead of failing deep in a use case as a database error."""
    query = request.scope.get("query_string", b"")
    # U+0000 reaches a query value only percent-encoded (%00) or raw: parse the query only then
    places = (
        [("query", k) for k, v in request.query_params.multi_items() if NUL in k or NUL in v]
        if b"%00" in query or b"\x00" in query
        else []
    )
    places += [("path", k) for k, v in request.path_params.items() if isinstance(v, str) and NUL in v]
    if request.headers.get("content-type", "").startswith("application/json"):
        body = await request.body()  # cached: the route reads the same bytes
        if b"\\u0000" in body:  # JSON must escape U+0000; parse only when it may be there
            with contextlib.suppress(ValueError):  # malformed JSON: the route's own validation answers it
                places += [("body", p) for p in _nul_paths(json.loads(body))]
    if places:
        raise Problem(
            422,
            "Validation failed",
            "text may not contain the NUL character (U+0000)",
            type_="validation",
            errors=[
                {"field": field, "in": where, "rule": "nul_character", "message": "contains U+0000"}
                for where, field in places
            ],
        )
