"""Writing to the outbox. Call these inside the transaction that changes state.

The functions never open or commit a transaction themselves: the caller's
transaction makes the state change and its events atomic. A statement trigger on
``outbox`` (migration 004) sends ``NOTIFY reelpolicy_outbox``, which wakes the relays
when (and only when) the transaction commits.
"""

from __future__ import annotations

import uuid
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import asyncpg
from pydantic_core import to_json

from reelpolicy_common.events.envelope import CURRENT_SCHEMA_VERSION, Envelope
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


class EncodedEvent(NamedTuple):
    """An event whose envelope is encoded already (the wire bytes of an :class:`Envelope`),
    for bulk writers that assemble the JSON themselves."""

    event_id: uuid.UUID | str
    key: str
    event_type: str
    value: bytes
    schema_version: int = CURRENT_SCHEMA_VERSION


async def enqueue_many(
    conn: asyncpg.Connection,
    *,
    topic: str,
    envelopes: Sequence[Envelope],
    headers: Mapping[str, str] | None = None,
) -> None:
    """Add events in order; large batches go through ``COPY``. ``headers`` are added to
    every event's Kafka headers (a republish tags its records with the snapshot id)."""
    encoded = (
        EncodedEvent(e.event_id, e.key, e.type.value, e.to_bytes(), e.schema_version)
        for e in envelopes
    )
    await enqueue_encoded(conn, topic=topic, events=encoded, count=len(envelopes), headers=headers)


async def enqueue_encoded(
    conn: asyncpg.Connection,
    *,
    topic: str,
    events: Iterable[EncodedEvent],
    count: int,
    headers: Mapping[str, str] | None = None,
) -> None:
    """Add ``count`` encoded events in order: the same rows as :func:`enqueue_many`.

    ``events`` may be a lazy iterable: with ``COPY`` (64 or more) it is consumed while
    the rows stream to the server.
    """
    if count <= 0:
        return
    _require_transaction(conn)
    rows = _rows(topic, events, headers or {})
    if count >= 64:
        await conn.copy_records_to_table("outbox", records=rows, columns=_COLUMNS)
    else:
        await conn.executemany(
            "INSERT INTO outbox (event_id, topic, key, lane, event_type, value, headers)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7)",
            list(rows),
        )


_COLUMNS = ["event_id", "topic", "key", "lane", "event_type", "value", "headers"]


def _rows(
    topic: str, events: Iterable[EncodedEvent], extra_headers: Mapping[str, str]
) -> Iterator[tuple[object, ...]]:
    """Outbox rows; lanes and headers (encoded: bytes are JSON to the jsonb codec) are
    computed once per key and per event type, not per row."""
    trace = {**current_trace_headers(), **extra_headers}
    lanes: dict[str, int] = {}
    headers_of: dict[tuple[str, int], bytes] = {}
    for e in events:
        lane = lanes.get(e.key)
        if lane is None:
            lane = lanes[e.key] = lane_of(e.key)
        kind = (e.event_type, e.schema_version)
        headers = headers_of.get(kind)
        if headers is None:
            headers = headers_of[kind] = to_json(
                outbox_headers(trace, event_type=kind[0], schema_version=kind[1])
            )
        yield (e.event_id, topic, e.key, lane, e.event_type, e.value, headers)
