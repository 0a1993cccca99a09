"""Recently checked API keys, so a request does not cost a database round trip for its key.

Every request carries a bearer key. Each service process keeps the principals of the keys
it checked in the last ``AUTH_CACHE_SECONDS`` (default 5 s; 0 turns the cache off).

A key's change (issue, revoke, or a replicated ``api_key.changed``) goes through
:func:`reelpolicy_common.auth.upsert_api_key`, which calls :func:`api_keys_changed`:
that empties every cache of the process at once. Another process (another replica of
the service) learns of a revocation from its own table, so a revoked key is refused
there within ``AUTH_CACHE_SECONDS`` of the revocation reaching that table. Unknown
keys are never cached (a key just issued works as soon as it is stored).

The cache holds what :mod:`reelpolicy_common.auth` gives it (a ``Principal``) and knows
nothing else of keys than their hashes: ``auth`` depends on it, not the other way round.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Generic, TypeVar

P = TypeVar("P")
"""What a key hash stands for (``reelpolicy_common.auth.Principal``)."""

_generation = 0


def api_keys_changed() -> None:
    """Invalidate every principal cache of this process (an API key was written)."""
    global _generation
    _generation += 1


def key_generation() -> int:
    """Take this before reading a key, and pass it to :meth:`PrincipalCache.put`."""
    return _generation


class PrincipalCache(Generic[P]):
    """Principals by key hash, each for at most ``ttl_seconds`` and until a key changes."""

    def __init__(
        self,
        *,
        ttl_seconds: float,
        max_entries: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl_seconds
        self._max = max_entries
        self._clock = clock
        self._entries: dict[str, tuple[P, float, int]] = {}

    def get(self, key_hash: str) -> P | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        principal, expires, generation = entry
        if generation != _generation or self._clock() >= expires:
            del self._entries[key_hash]
            return None
        return principal

    def put(self, key_hash: str, principal: P, *, generation: int) -> None:
        """Remember ``principal`` if no key changed since ``generation`` was taken."""
        if self._ttl <= 0 or generation != _generation:
            return
        if len(self._entries) >= self._max:
            self._entries.clear()
        self._entries[key_hash] = (principal, self._clock() + self._ttl, generation)
