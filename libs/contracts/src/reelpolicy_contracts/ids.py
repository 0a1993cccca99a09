"""Record and event ids: UUID version 7 (RFC 9562), time-ordered.

Time-ordered ids keep primary-key indexes append-mostly: the registry's records, every
service's outbox and ``processed_events`` (event ids), notify's deliveries. A random
UUID per row scatters index writes over the whole index.

Made by ``uuid-utils`` (Rust's ``uuid`` crate): ids are monotonic within a millisecond
and drawn from a seeded user-space generator, with no system call per id (the bulk
import makes hundreds of thousands); the result is a standard :class:`uuid.UUID`.
"""

from __future__ import annotations

import functools
import hashlib
import uuid

import uuid_utils
from uuid_utils import compat


def uuid7() -> uuid.UUID:
    """A fresh version-7 UUID: 48-bit Unix milliseconds, then counter and random bits."""
    return compat.uuid7()


def uuid7_text() -> str:
    """:func:`uuid7` as its text, for bulk paths that only send an id to the database
    or into JSON: no :class:`uuid.UUID` object is built, which costs several times more
    than the text."""
    return str(uuid_utils.uuid7())


def derived_id(*parts: str, prefix: str | int) -> uuid.UUID:
    """A UUID (version 8, RFC 9562) that is a function of ``parts``: the same parts give
    the same id, so an effect derived again from the same input (after a database was
    restored from an older backup) carries the id it had the first time and is
    deduplicated downstream, where a fresh :func:`uuid7` would make it a new one.

    The first 48 bits keep index writes together as a UUIDv7's clock does: given an int
    (Unix milliseconds), they are that; given a string, a hash of it (so every id derived
    from one cause, such as one policy change, sits together). The other bits hash the
    parts.
    """
    head = (prefix & (2**48 - 1)).to_bytes(6, "big") if isinstance(prefix, int) else _head(prefix)
    raw = bytearray(head + hashlib.sha256("\x1f".join(parts).encode()).digest()[:10])
    raw[6] = (raw[6] & 0x0F) | 0x80  # version 8
    raw[8] = (raw[8] & 0x3F) | 0x80  # the RFC 9562 variant
    return uuid.UUID(bytes=bytes(raw))


@functools.lru_cache(maxsize=1024)
def _head(prefix: str) -> bytes:
    # One cause (a policy change) derives the ids of all its changes: hash it once.
    return hashlib.sha256(prefix.encode()).digest()[:6]
