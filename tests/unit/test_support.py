"""The shared test helper `eventually` (tests/support.py), on which every asynchronous test relies."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support import eventually


async def test_eventually_returns_the_first_truthy_answer() -> None:
    answers: Iterator[object] = iter([None, [], {"id": "x"}])

    async def probe() -> object:
        return next(answers)

    assert await eventually(probe, "an answer", timeout=5, interval=0) == {"id": "x"}


async def test_eventually_counts_tolerated_errors_as_not_yet_and_raises_others() -> None:
    calls: list[int] = []

    async def flaky() -> bool:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("still starting")
        return True

    assert await eventually(flaky, "start", timeout=5, interval=0, tolerate=(ConnectionError,)) is True
    assert len(calls) == 3
    calls.clear()
    with pytest.raises(ConnectionError):
        await eventually(flaky, "start", timeout=5, interval=0)


async def test_eventually_names_what_it_waited_for_and_the_last_answer() -> None:
    async def never() -> int:
        return 0

    with pytest.raises(AssertionError, match=r"timed out waiting for the thing \(last: 0\)"):
        await eventually(never, "the thing", timeout=0.2, interval=0.05)
