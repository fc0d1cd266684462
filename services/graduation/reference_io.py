"""Reference tables arrive as JSON rows or as text/csv with a header line; both are validated row by
row, and the first failure names the row, the field and the rule."""

from __future__ import annotations

import csv
import io
import json
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from pena.http.uploads import uploaded_text
from pena.problems import Problem, field_error

MAX_ROWS = 10_000
RowModel = TypeVar("RowModel", bound=BaseModel)


def _from_csv(raw: bytes) -> list[dict[str, Any]]:
    reader = csv.DictReader(io.StringIO(uploaded_text(raw, field="body")))
    rows: list[dict[str, Any]] = []
    for row in reader:
        # empty cells mean "not given" so model defaults apply
        rows.append({k.strip(): v.strip() for k, v in row.items() if k and v is not None and v.strip() != ""})
    return rows


def _from_json(raw: bytes) -> list[dict[str, Any]]:
    try:
        data = json.loads(raw or b"null")
    except UnicodeDecodeError as exc:  # json.loads decodes bytes itself
        raise field_error("body", "utf8", "body must be UTF-8 JSON") from exc
    except json.JSONDecodeError as exc:
        raise field_error("body", "json_invalid", f"body is not JSON: {exc.msg}") from exc
    if isinstance(data, dict) and isinstance(data.get("rows"), list):
        data = data["rows"]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise field_error("body", "rows_list", 'send a JSON list of rows or {"rows": [...]}')
    return data


def parse_rows(content_type: str, raw: bytes, model: type[RowModel]) -> list[RowModel]:
    media = content_type.split(";")[0].strip().lower()
    if media == "text/csv":
        rows, label = _from_csv(raw), "line"
    elif media in ("application/json", ""):
        rows, label = _from_json(raw), "rows"
    else:
        raise Problem(
            415, "Unsupported media type", "send application/json or text/csv", type_="unsupported-media-type"
        )
    if not rows:
        raise field_error("rows", "min_items", "at least one row is needed")
    if len(rows) > MAX_ROWS:
        raise field_error("rows", "max_items", f"at most {MAX_ROWS} rows per request")
    parsed: list[RowModel] = []
    for index, row in enumerate(rows):
        try:
            parsed.append(model.model_validate(row))
        except ValidationError as exc:
            err = exc.errors()[0]
            where = f"line {index + 2}" if label == "line" else f"rows[{index}]"
            field = ".".join(str(p) for p in err.get("loc", ())) or "row"
            raise Problem(
                422,
                "Validation failed",
                f"{where}: {field}: {err.get('msg')}",
                type_="validation",
                errors=[{"field": f"{where}.{field}", "rule": err.get("type"), "message": err.get("msg")}],
            ) from exc
    return parsed
