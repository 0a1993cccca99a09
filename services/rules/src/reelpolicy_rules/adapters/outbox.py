"""Writing pre-encoded events to the shared outbox (same rows as ``enqueue_many``).

``reelpolicy_common.outbox.enqueue_many`` takes ``Envelope`` models; the rules bulk
path encodes its envelopes itself (see ``handlers.changes.EventEncoder``), so this
writes the identical outbox rows (topic, key, lane, event type, value, trace and
type headers) with ``COPY`` for large batches, then wakes the relay.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import asyncpg

from reelpolicy_common.events.envelope import CURRENT_SCHEMA_VERSION
from reelpolicy_common.outbox.store import lane_of, outbox_headers
from reelpolicy_common.telemetry import current_trace_headers

COLUMNS = ["event_id", "topic", "key", "lane", "event_type", "value", "headers"]


class EncodedEvent(NamedTuple):
    event_id: uuid.UUID
    key: str
    event_type: str
    value: bytes


async def enqueue_encoded(
    conn: asyncpg.Connection, *, topic: str, events: Iterable[EncodedEvent], count: int
) -> None:
    """Add ``count`` encoded events in order, inside the caller's transaction.

    ``events`` may be a lazy iterable: with ``COPY`` (64 or more) it is consumed while
    the rows stream to the server.
    """
    if count <= 0:
        return
    if not conn.is_in_transaction():
        raise RuntimeError("outbox writes must run inside the state change's transaction")
    rows = _rows(topic, events)
    if count >= 64:
        await conn.copy_records_to_table("outbox", records=rows, columns=COLUMNS)
    else:
        await conn.executemany(
            "INSERT INTO outbox (event_id, topic, key, lane, event_type, value, headers)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            list(rows),
        )


def _rows(topic: str, events: Iterable[EncodedEvent]) -> Iterator[tuple[Any, ...]]:
    trace_headers = current_trace_headers()
    lanes: dict[str, int] = {}
    headers_of: dict[str, dict[str, str]] = {}
    for e in events:
        lane = lanes.get(e.key)
        if lane is None:
            lane = lanes[e.key] = lane_of(e.key)
        headers = headers_of.get(e.event_type)
        if headers is None:
            headers = headers_of[e.event_type] = outbox_headers(
                trace_headers, event_type=e.event_type, schema_version=CURRENT_SCHEMA_VERSION
            )
        yield (e.event_id, topic, e.key, lane, e.event_type, e.value, headers)
