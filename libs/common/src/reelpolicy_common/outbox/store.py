"""Writing to the outbox. Call these inside the transaction that changes state.

The functions never open or commit a transaction themselves: the caller's
transaction makes the state change and its events atomic. A statement trigger on
``outbox`` (migration 004) sends ``NOTIFY reelpolicy_outbox``, which wakes the relays
when (and only when) the transaction commits.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import asyncpg

from reelpolicy_common.events.envelope import Envelope
from reelpolicy_common.telemetry import current_trace_headers

NOTIFY_CHANNEL = "reelpolicy_outbox"
DEFAULT_LANES = 16


@dataclass(frozen=True)
class OutboxRecord:
    """A row as the relay reads it."""

    seq: int
    topic: str
    key: str
    value: bytes
    headers: dict[str, str] = field(default_factory=dict)


def lane_of(key: str, lanes: int = DEFAULT_LANES) -> int:
    """The ordering lane of a key: one relay at a time publishes a lane, in order."""
    return zlib.crc32(key.encode()) % lanes


def outbox_headers(
    trace: Mapping[str, str], *, event_type: str, schema_version: int
) -> dict[str, str]:
    """The Kafka headers of an outbox row: the writer's trace context, then the event's
    type and schema version (what every writer of the outbox stores)."""
    return {**trace, "event-type": event_type, "schema-version": str(schema_version)}


def _require_transaction(conn: asyncpg.Connection) -> None:
    if not conn.is_in_transaction():
        raise RuntimeError("outbox writes must run inside the state change's transaction")


async def enqueue(conn: asyncpg.Connection, *, topic: str, envelope: Envelope) -> None:
    """Add one event to the outbox (with the current trace context)."""
    await enqueue_many(conn, topic=topic, envelopes=[envelope])


async def enqueue_many(
    conn: asyncpg.Connection, *, topic: str, envelopes: Sequence[Envelope]
) -> None:
    """Add events in order; large batches go through ``COPY``."""
    if not envelopes:
        return
    _require_transaction(conn)
    headers = current_trace_headers()
    rows = [
        (
            e.event_id,
            topic,
            e.key,
            lane_of(e.key),
            e.type.value,
            e.to_bytes(),
            outbox_headers(headers, event_type=e.type.value, schema_version=e.schema_version),
        )
        for e in envelopes
    ]
    columns = ["event_id", "topic", "key", "lane", "event_type", "value", "headers"]
    if len(rows) >= 64:
        await conn.copy_records_to_table("outbox", records=rows, columns=columns)
    else:
        await conn.executemany(
            "INSERT INTO outbox (event_id, topic, key, lane, event_type, value, headers)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            rows,
        )
