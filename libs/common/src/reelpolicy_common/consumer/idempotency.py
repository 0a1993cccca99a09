"""The idempotent-consumer check, recorded in the handler's own transaction."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg


async def record_processed(conn: asyncpg.Connection, *, consumer: str, event_id: uuid.UUID) -> bool:
    """Record that ``consumer`` handled ``event_id``; False if it already had.

    Call it first inside the transaction that applies the event's effect: the
    effect and the record commit together, so a redelivered event changes nothing.
    """
    return event_id in await record_processed_many(conn, consumer=consumer, event_ids=[event_id])


async def was_processed(conn: asyncpg.Connection, *, consumer: str, event_id: uuid.UUID) -> bool:
    """Whether ``consumer`` recorded ``event_id`` (a check that records nothing: for a
    handler that commits its effect in steps and records the event with the last)."""
    found = await conn.fetchval(
        "SELECT 1 FROM processed_events WHERE consumer = $1 AND event_id = $2", consumer, event_id
    )
    return found is not None


async def record_processed_many(
    conn: asyncpg.Connection, *, consumer: str, event_ids: Sequence[uuid.UUID]
) -> set[uuid.UUID]:
    """:func:`record_processed` for many events in one statement; returns the new ones."""
    if not conn.is_in_transaction():
        raise RuntimeError("record_processed must run inside the effect's transaction")
    rows = await conn.fetch(
        "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[])"
        " ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        list(event_ids),
    )
    return {r["event_id"] for r in rows}
