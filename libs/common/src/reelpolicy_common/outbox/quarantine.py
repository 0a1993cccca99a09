"""The outbox quarantine: rows the broker refused for good, set aside by the relay.

Operators list them and, once the cause is dealt with (a broker limit raised, a topic
created), move them back into the outbox. A retried row is a new pending row (a new
``seq``, at the end of its lane) with its old event id, so consumers that did see it
once still dedupe it; it goes out after the rows of its key published meanwhile.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg


@dataclass(frozen=True)
class QuarantinedRow:
    seq: int
    event_id: uuid.UUID
    topic: str
    key: str
    event_type: str
    size: int
    error: str
    quarantined_at: datetime


async def list_quarantined(conn: asyncpg.Connection) -> list[QuarantinedRow]:
    """Every quarantined row, oldest first (without its value: its size, 0 for a tombstone)."""
    rows = await conn.fetch(
        "SELECT seq, event_id, topic, key, event_type, coalesce(octet_length(value), 0) AS size, error,"
        " quarantined_at FROM outbox_quarantine ORDER BY seq"
    )
    return [QuarantinedRow(**dict(r)) for r in rows]


async def retry_quarantined(conn: asyncpg.Connection, *, seqs: Sequence[int] | None) -> list[int]:
    """Move the rows ``seqs`` (None: all) back into the outbox as pending rows, in their
    order, in one transaction; returns the seqs moved (unknown ones are skipped)."""
    async with conn.transaction():
        moved = await conn.fetch(
            "WITH moved AS (DELETE FROM outbox_quarantine"
            "   WHERE $1::bigint[] IS NULL OR seq = ANY($1::bigint[]) RETURNING *),"
            " inserted AS (INSERT INTO outbox (event_id, topic, key, lane, event_type, value,"
            "   headers, created_at)"
            "   SELECT event_id, topic, key, lane, event_type, value, headers, created_at"
            "   FROM moved ORDER BY seq RETURNING event_id)"
            " SELECT m.seq FROM moved m JOIN inserted i USING (event_id) ORDER BY m.seq",
            None if seqs is None else list(seqs),
        )
    return [r["seq"] for r in moved]
