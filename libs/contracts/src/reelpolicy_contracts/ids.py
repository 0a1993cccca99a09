"""Record and event ids: UUID version 7 (RFC 9562), time-ordered.

Time-ordered ids keep primary-key indexes append-mostly: the registry's records, every
service's outbox and ``processed_events`` (event ids), notify's deliveries. A random
UUID per row scatters index writes over the whole index.

Made by ``uuid-utils`` (Rust's ``uuid`` crate): ids are monotonic within a millisecond
and drawn from a seeded user-space generator, with no system call per id (the bulk
import makes hundreds of thousands); the result is a standard :class:`uuid.UUID`.
"""

from __future__ import annotations

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
