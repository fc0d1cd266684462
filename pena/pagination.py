"""Cursor pagination: opaque cursors carrying the last row's sort key, so pages stay stable under
concurrent inserts (no OFFSET scans). Page size is capped by settings."""

from __future__ import annotations

import base64
import json
from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from pena.problems import field_error

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
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
        raise field_error("cursor", "invalid_cursor", "cursor is not one this API returned") from exc


def clamp_limit(limit: int, maximum: int) -> int:
    if limit < 1:
        raise field_error("limit", "greater_than_equal", "limit must be at least 1")
    return min(limit, maximum)
