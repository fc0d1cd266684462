"""Per-subject request rate limit: a token bucket per authenticated (subject, client id), checked by
`pena.auth.authenticated` after the token is verified, so an unverified header never gets a bucket.

Memory is bounded with `cachetools.TTLCache` (a well-kept library; no eviction code of our own): a
bucket idle for a full refill period (one minute) is full again, so expiring it then changes nothing,
and at most `max_subjects` buckets are kept (least recently used first out when more subjects are
active within one minute).
"""

from __future__ import annotations

import time

from cachetools import TTLCache

from pena.problems import Problem

REFILL_SECONDS = 60.0


def _now() -> float:
    return time.monotonic()


class RateLimiter:
    def __init__(self, per_minute: int, *, max_subjects: int, name: str = "requests") -> None:
        if per_minute < 1 or max_subjects < 1:
            raise ValueError("per_minute and max_subjects must be at least 1")
        self.capacity = float(per_minute)
        self.refill_per_second = per_minute / REFILL_SECONDS
        self.name = name
        # (allowance, last update) per key; re-set on every hit so the entry's TTL restarts
        self._buckets: TTLCache[tuple[str, ...], tuple[float, float]] = TTLCache(
            maxsize=max_subjects, ttl=REFILL_SECONDS, timer=_now
        )

    def __len__(self) -> int:
        return len(self._buckets)

    @property
    def max_subjects(self) -> int:
        return int(self._buckets.maxsize)

    def hit(self, *key: str) -> None:
        """Takes one token from the key's bucket; 429 problem+json when it is empty."""
        now = _now()
        allowance, last = self._buckets.get(key, (self.capacity, now))
        allowance = min(self.capacity, allowance + (now - last) * self.refill_per_second)
        if allowance < 1.0:
            self._buckets[key] = (allowance, now)
            wait = max(1, int((1.0 - allowance) / self.refill_per_second + 0.999))
            raise Problem(
                429,
                "Too many requests",
                f"rate limit reached for this subject ({self.name})",
                type_="rate-limited",
                headers={"Retry-After": str(wait)},
            )
        self._buckets[key] = (allowance - 1.0, now)
