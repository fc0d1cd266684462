"""Identifiers. Every row and event id in PENA is a random UUID (version 4) in its canonical
36-character text form; one function so the format is decided once."""

from __future__ import annotations

import uuid


def new_id() -> str:
    """A fresh random id, e.g. "3f2b9c1e-8d4a-4f6b-9a0e-2c7d5e1f4a8b"."""
    return str(uuid.uuid4())
