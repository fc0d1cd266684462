"""Identifiers. Every row and event id in PENA is a random UUID (version 4) in its canonical
36-character text form; one function so the format is decided once."""

from __future__ import annotations

import os


def new_id() -> str:
    """A fresh random id, e.g. "3f2b9c1e-8d4a-4f6b-9a0e-2c7d5e1f4a8b": what `str(uuid.uuid4())` gives
    (16 random bytes, version 4, RFC 4122 variant), formatted without a UUID object (about a third of
    the time; the consumers and the scheduler make one or two per event)."""
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # variant RFC 4122
    h = raw.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
