"""The business-field taxonomy (fields and their sub-fields), one versioned data file
(`business_fields.json`) read here and nowhere else. Training owns it (serves it on
`GET /v1/batches/reference-data` and schedules batches in its codes); participants (registration,
update, CSV import) and monev (the survey's business field) validate with the same rule
(`business_field_errors` / the `BusinessFieldCode` type: one rule code, `unknown_business_field`);
statistics group a sub-field under its field (`roll_up`, `rolled_up` for SQL).

Services never import each other, so the list lives in the kernel as data rather than in training's
code: every service reads the same file of the same deployment, and a new version is one edit here
(add codes; never rename or remove one that records use)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from sqlalchemy import case, literal_column

DATA_FILE = Path(__file__).with_name("business_fields.json")
RULE = "unknown_business_field"
CODE = re.compile(r"[a-z][a-z0-9_]{0,39}")


@dataclass(frozen=True)
class BusinessField:
    code: str
    label: str
    parent: str | None  # None for a field, the field's code for a sub-field


@dataclass(frozen=True)
class Taxonomy:
    version: str
    effective_from: str
    owner: str
    source: str
    entries: dict[str, BusinessField]  # every code, fields and sub-fields, in the file's order

    def field_of(self, code: str) -> str | None:
        entry = self.entries.get(code)
        if entry is None:
            return None
        return entry.parent or entry.code


@cache
def taxonomy() -> Taxonomy:
    raw = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    entries: dict[str, BusinessField] = {}
    for field in raw["fields"]:
        entries[field["code"]] = BusinessField(field["code"], field["label"], None)
        for sub in field.get("sub_fields", []):
            entries[sub["code"]] = BusinessField(sub["code"], sub["label"], field["code"])
    if bad := [code for code in entries if not CODE.fullmatch(code)]:
        raise ValueError(f"{DATA_FILE.name}: codes must match {CODE.pattern}: {bad}")
    return Taxonomy(raw["version"], raw["effective_from"], raw["owner"], raw["source"], entries)


def codes() -> list[str]:
    """Every accepted code (fields and sub-fields), in the file's order."""
    return list(taxonomy().entries)


def business_field_errors(value: str | None, *, field: str = "business_field") -> list[dict[str, str]]:
    """The one check of a business field: a code of the taxonomy (a field or a sub-field); None is
    'not given' and passes (whether one is required is the caller's rule)."""
    if value is None or value in taxonomy().entries:
        return []
    return [{"field": field, "rule": RULE, "message": _message()}]


def _message() -> str:
    return f"business_field must be a code of the business-field taxonomy {taxonomy().version}: {', '.join(codes())}"


def roll_up(value: str | None) -> str | None:
    """The field a code belongs to (`makanan_berat` -> `kuliner`; a field is its own); a value the
    taxonomy does not know (an old free-text survey answer) is returned unchanged."""
    if value is None:
        return None
    return taxonomy().field_of(value) or value


def rolled_up(column: Any) -> Any:
    """`roll_up` in SQL, for a GROUP BY: CASE WHEN column = 'makanan_berat' THEN 'kuliner' ... ELSE column.
    The codes are written inline (checked to be plain codes when the file is read), not bound: the
    same expression in SELECT and GROUP BY must be the same text for PostgreSQL."""
    parents = [(code, entry.parent) for code, entry in taxonomy().entries.items() if entry.parent]
    if not parents:
        return column
    whens: list[tuple[Any, Any]] = [
        (column == literal_column(f"'{code}'"), literal_column(f"'{parent}'")) for code, parent in parents
    ]
    return case(*whens, else_=column)


def _validated(value: str) -> str:
    if business_field_errors(value):
        raise PydanticCustomError(RULE, _message())
    return value


BusinessFieldCode = Annotated[
    str,
    AfterValidator(_validated),
    WithJsonSchema({"type": "string", "enum": codes(), "description": "a code of the business-field taxonomy"}),
]
"""A request field holding a business field: refused with rule `unknown_business_field` unless the
taxonomy knows it (fields and sub-fields alike)."""
