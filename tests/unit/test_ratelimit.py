"""The per-subject token bucket: refill, 429 problem, expiry of idle buckets and the size bound."""

from __future__ import annotations

import pytest

from pena import ratelimit
from pena.problems import Problem
from pena.ratelimit import RateLimiter


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeTime:
    fake = FakeTime()
    monkeypatch.setattr(ratelimit, "_now", fake)
    return fake


def test_a_subject_gets_its_limit_then_429_then_tokens_back_as_time_passes(clock: FakeTime) -> None:
    limiter = RateLimiter(60, max_subjects=10)  # one token a second
    for _ in range(60):
        limiter.hit("alice", "app")
    with pytest.raises(Problem) as caught:
        limiter.hit("alice", "app")
    assert caught.value.status == 429
    assert caught.value.headers == {"Retry-After": "1"}
    limiter.hit("bob", "app")  # another subject is not affected
    limiter.hit("alice", "other-client")  # nor the same subject through another client
    clock.now += 1.0
    limiter.hit("alice", "app")  # one token refilled
    with pytest.raises(Problem):
        limiter.hit("alice", "app")


def test_idle_buckets_expire_and_the_size_is_bounded(clock: FakeTime) -> None:
    limiter = RateLimiter(60, max_subjects=3)
    for i in range(10):
        limiter.hit(f"s{i}", "")
        assert len(limiter) <= 3
    assert len(limiter) == 3
    clock.now += ratelimit.REFILL_SECONDS + 0.1  # idle a full refill period: full again, so forgotten
    limiter.hit("s9", "")
    assert len(limiter) == 1


def test_nonsense_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(0, max_subjects=1)
    with pytest.raises(ValueError, match="at least 1"):
        RateLimiter(10, max_subjects=0)
