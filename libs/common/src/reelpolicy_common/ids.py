"""Record and event ids: UUID version 7 (RFC 9562), time-ordered.

Time-ordered ids keep primary-key indexes append-mostly: the registry's records, every
service's outbox and ``processed_events`` (event ids), notify's deliveries. A random
UUID per row scatters index writes over the whole index.
"""

from __future__ import annotations

import os
import time
import uuid

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def uuid7() -> uuid.UUID:
    """A fresh version-7 UUID: 48-bit Unix milliseconds, then 74 random bits."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis & ((1 << 48) - 1)) << 80
        | 0x7 << 76
        | ((rand >> 62) & _RAND_A) << 64
        | 0b10 << 62
        | (rand & _RAND_B)
    )
    return uuid.UUID(int=value)
