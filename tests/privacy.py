"""What the tests count as a NIK or KK number in events, dead letters and logs: a 16-digit number standing
alone. W3C trace ids and span ids are random hex and now and then all digits (a 16-character span id about
once in 1,900), so trace context and other long hex runs are taken out before the search."""

from __future__ import annotations

import re

TRACE_CONTEXT = re.compile(r"\b[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}\b|[0-9a-f]{17,}")
SIXTEEN_DIGITS = re.compile(r"(?<!\d)\d{16}(?!\d)")


def sixteen_digit_numbers(text: str) -> list[str]:
    """The stand-alone 16-digit numbers in `text`, trace context aside."""
    return SIXTEEN_DIGITS.findall(TRACE_CONTEXT.sub(" ", text))
