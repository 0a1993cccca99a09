"""The idempotent-consumer check, recorded in the handler's own transaction, and the
pruning of records old enough that their events cannot come back."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence

import asyncpg

from reelpolicy_common.supervisor import heartbeat

log = logging.getLogger(__name__)


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


PRUNE_BATCH_ROWS = 10_000
PRUNE_EVERY_SECONDS = 3600.0
PRUNE_PASS_SECONDS = 900.0
"""A pass that takes longer is abandoned (its batches so far stay deleted)."""

# processed_at has no index (one more index on every consumed event's insert would cost
# the hot path): each batch scans the heap from its start, where the oldest rows are.
_PRUNE_BATCH = (
    "DELETE FROM processed_events WHERE ctid = ANY(ARRAY("
    "SELECT ctid FROM processed_events"
    " WHERE processed_at < now() - make_interval(secs => $1) LIMIT $2))"
)


async def prune_processed(
    pool: asyncpg.Pool, *, older_than_seconds: float, batch_rows: int = PRUNE_BATCH_ROWS
) -> int:
    """Delete the records of events handled more than ``older_than_seconds`` ago, in
    short transactions of at most ``batch_rows`` rows; how many went.

    An event whose record is gone is handled again if it ever comes back, so the age
    must exceed how long an event can come back (see ``PROCESSED_EVENTS_RETENTION_SECONDS``).
    """
    deleted = 0
    while True:
        async with pool.acquire() as conn:
            status = await conn.execute(_PRUNE_BATCH, older_than_seconds, batch_rows)
        count = int(status.rsplit(" ", 1)[-1])
        deleted += count
        if count < batch_rows:
            return deleted


async def prune_processed_forever(
    pool: asyncpg.Pool, *, retention_seconds: float, every_seconds: float = PRUNE_EVERY_SECONDS
) -> None:
    """:func:`prune_processed` now and every ``every_seconds``, for good (a supervised
    background task). A pass that fails (the database unreachable) is logged and tried
    again at the next one: the table only grows meanwhile."""
    while True:
        heartbeat(within=every_seconds + PRUNE_PASS_SECONDS)
        try:
            async with asyncio.timeout(PRUNE_PASS_SECONDS):
                deleted = await prune_processed(pool, older_than_seconds=retention_seconds)
            if deleted:
                log.info(
                    "pruned %d processed_events rows older than %.0fs", deleted, retention_seconds
                )
        except Exception as exc:
            log.warning(
                "pruning processed_events failed: %r; next try in %.0fs", exc, every_seconds
            )
        await asyncio.sleep(every_seconds)
