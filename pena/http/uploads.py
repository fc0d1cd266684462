"""The one decoder of uploaded text files (the participants import, graduation's reference data)."""

from __future__ import annotations

from pena.http.screening import NUL
from pena.problems import field_error


def uploaded_text(raw: bytes, *, field: str, what: str = "the CSV") -> str:
    """An uploaded text file (CSV) as a string: UTF-8, a byte-order mark dropped, and free of U+0000
    (such a file is damaged, not data); else a 422 naming `field`. JSON bodies are checked by
    `refuse_nul_characters`, files are not, so each upload decodes through here."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise field_error(field, "utf8", f"{what} must be UTF-8 encoded") from exc
    if NUL in text:
        raise field_error(field, "nul_character", f"{what} contains the NUL character (U+0000)")
    return text
