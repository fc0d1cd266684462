"""The graduation service's own unit rule (to be replaced by pena.access, issue 13)."""

from __future__ import annotations

from pena.auth import Principal


def within_unit(principal: Principal, region_code: str | None) -> bool:
    """Tokens with a unit (a region prefix) act only on records of that region."""
    if principal.unit is None:
        return True
    return region_code is not None and region_code.startswith(principal.unit)


def scoped_region_prefix(principal: Principal, requested: str | None) -> tuple[str | None, bool]:
    """The region prefix a list may use, and False when the request lies wholly outside the unit."""
    unit = principal.unit
    if unit is None or (requested and requested.startswith(unit)):
        return requested, True
    if not requested or unit.startswith(requested):
        return unit, True
    return None, False
