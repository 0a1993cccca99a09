"""A token bucket per API key, in this process's memory.

Each key may make ``burst`` requests at once and ``per_minute`` sustained; a request
over that is told how many whole seconds to wait (``Retry-After``). The buckets live
in one process: with N replicas behind a balancer a key gets up to N times the rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable


class RateLimiter:
    """Token buckets by key: :meth:`retry_after` is 0 when the request may go ahead."""

    def __init__(
        self,
        *,
        per_minute: float,
        burst: int,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_second = per_minute / 60
        self._burst = float(burst)
        self._max_keys = max_keys
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        """key -> (tokens left, when they were counted)"""

    def retry_after(self, key: str) -> int:
        """Take a token for ``key``; 0 if there was one, else the seconds until there is."""
        now = self._clock()
        tokens, counted = self._buckets.get(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - counted) * self._per_second)
        if tokens >= 1:
            if key not in self._buckets and len(self._buckets) >= self._max_keys:
                self._forget_full(now)
            self._buckets[key] = (tokens - 1, now)
            return 0
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1 - tokens) / self._per_second))

    def _forget_full(self, now: float) -> None:
        # a bucket that has refilled is the same as no bucket: dropping it changes nothing
        full = [
            key
            for key, (tokens, counted) in self._buckets.items()
            if tokens + (now - counted) * self._per_second >= self._burst
        ]
        for key in full:
            del self._buckets[key]
        if len(self._buckets) >= self._max_keys:  # all busy: start afresh rather than grow
            self._buckets.clear()
