"""How many failed API-key sign-ins a client address may make in a sliding window (pure).

The counts live in one process's memory: with several replicas behind a load balancer
an address may make up to ``limit`` failed attempts per replica in a window (a
balancer with client affinity keeps it at ``limit``). That still turns guessing a key
(a 256-bit secret) from hopeless into more hopeless; what it stops is one client
hammering the registry through the portal.
"""

from __future__ import annotations

import math
from collections import OrderedDict, deque


class FailedSignIns:
    """Failed sign-ins by client address; an address with ``limit`` failures within the
    last ``window_seconds`` waits until the oldest of them leaves the window."""

    def __init__(self, *, limit: int, window_seconds: float, max_addresses: int = 100_000) -> None:
        if limit < 1 or window_seconds <= 0 or max_addresses < 1:
            raise ValueError("limit, window_seconds and max_addresses must be positive")
        self.limit = limit
        self.window_seconds = window_seconds
        self._max_addresses = max_addresses
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, address: str, now: float) -> int | None:
        """Whole seconds until ``address`` may try again, or None when it may now."""
        failures = self._recent(address, now)
        if failures is None or len(failures) < self.limit:
            return None
        return max(1, math.ceil(failures[0] + self.window_seconds - now))

    def record_failure(self, address: str, now: float) -> None:
        failures = self._recent(address, now)
        if failures is None:
            failures = self._failures[address] = deque(maxlen=self.limit)
        failures.append(now)
        self._failures.move_to_end(address)
        # bounded memory: the address failing least recently is forgotten first
        while len(self._failures) > self._max_addresses:
            self._failures.popitem(last=False)

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures
