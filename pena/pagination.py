"""Cursor (keyset) pagination: opaque cursors carrying the last row's sort key, so pages stay stable
under concurrent inserts (no OFFSET scans). Page size is capped by settings.

The one way a list is paged: the route takes `page: Paging` (the `cursor` and `limit` query parameters,
the limit checked and capped) and hands it to the service; the service reads its typed position with
`read_cursor`, asks its query for `page.limit + 1` rows after it, and hands them to `keyset_page`, which
cuts the extra row off and writes the next cursor from the last row kept."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Generic, TypeVar

from fastapi import Depends
from pydantic import BaseModel, ConfigDict

from pena.http.deps import SettingsDep
from pena.problems import field_error

T = TypeVar("T")
R = TypeVar("R")

INVALID_CURSOR = "cursor is not one this API returned"


def _page_example(schema: dict[str, Any], cls: type) -> None:
    """The OpenAPI example of `Page[X]`: a last page holding X's first example (none when X has none)."""
    args = getattr(cls, "__pydantic_generic_metadata__", {}).get("args", ())
    extra = getattr(args[0], "model_config", {}).get("json_schema_extra") if args else None
    if isinstance(extra, dict) and extra.get("examples"):
        schema["examples"] = [{"items": [extra["examples"][0]], "next_cursor": None, "limit": 50}]


class Page(BaseModel, Generic[T]):
    model_config = ConfigDict(json_schema_extra=_page_example)
    items: list[T]
    next_cursor: str | None = None
    limit: int


def encode_cursor(values: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(values, default=str).encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = json.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(value, dict):
            raise ValueError
        return value
    except (ValueError, json.JSONDecodeError) as exc:
        raise _invalid() from exc


def clamp_limit(limit: int, maximum: int) -> int:
    if limit < 1:
        raise field_error("limit", "greater_than_equal", "limit must be at least 1")
    return min(limit, maximum)


@dataclass(frozen=True)
class PageRequest:
    """Which page a caller asked for: the opaque cursor (None: the first page) and the page size."""

    cursor: str | None = None
    limit: int = 50


async def page_request(settings: SettingsDep, cursor: str | None = None, limit: int = 50) -> PageRequest:
    """The `cursor` and `limit` query parameters; the limit at least 1 and at most max_page_size."""
    return PageRequest(cursor=cursor, limit=clamp_limit(limit, settings.max_page_size))


Paging = Annotated[PageRequest, Depends(page_request)]


def _invalid() -> Exception:
    return field_error("cursor", "invalid_cursor", INVALID_CURSOR)


def _typed(value: Any, kind: type) -> Any:
    if kind is datetime:
        return datetime.fromisoformat(str(value))
    if kind is date:
        return date.fromisoformat(str(value))
    if kind is str:
        return str(value)
    if kind is int:
        return int(str(value))
    raise TypeError(f"cursor fields are str, int, date or datetime, not {kind.__name__}")


def read_cursor(page: PageRequest, *fields: tuple[str, type]) -> tuple[Any, ...] | None:
    """The position a cursor names, as a tuple typed by `fields` ((name, str | int | date | datetime), ...);
    None for the first page. A cursor that lacks a field or whose value does not parse is refused with
    the one 400 `invalid_cursor` problem.

        after = read_cursor(page, ("created_at", datetime), ("id", str))
    """
    values = decode_cursor(page.cursor)
    if values is None:
        return None
    try:
        return tuple(_typed(values[name], kind) for name, kind in fields)
    except (KeyError, ValueError, TypeError) as exc:
        raise _invalid() from exc


def keyset_page(
    rows: Sequence[R], page: PageRequest, *, key: Callable[[R], dict[str, Any]], item: Callable[[R], T]
) -> Page[T]:
    """The page from `rows` fetched with `page.limit + 1`: at most `limit` items (each made by `item`)
    and, when the extra row shows there is more, a cursor built by `key` from the last row kept.

        keyset_page(rows, page, key=lambda c: {"code": c.code}, item=centre_read)
    """
    limit = page.limit
    kept = rows[:limit]
    more = len(rows) > limit and bool(kept)
    return Page(
        items=[item(r) for r in kept],
        next_cursor=encode_cursor(key(kept[-1])) if more else None,
        limit=limit,
    )
