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
from typing import Any, NamedTuple

import asyncpg
from pydantic_core import to_json

from reelpolicy_common.telemetry import current_trace_headers
from reelpolicy_contracts.events.envelope import CURRENT_SCHEMA_VERSION, Envelope

NOTIFY_CHANNEL = "reelpolicy_outbox"
DEFAULT_LANES = 16
MAX_EVENT_BYTES = 900 * 1024
"""The largest encoded event the outbox accepts: safely below what a broker takes in
one record by default (Kafka's ``message.max.bytes`` and aiokafka's
``max_request_size``, both 1 MiB), leaving room for the key, headers and batch
framing. A larger event could never be published; it is refused when written, so the
state change it belongs to rolls back with it."""


class EventTooLargeError(ValueError):
    """An event whose encoded value exceeds :data:`MAX_EVENT_BYTES`.

    ``field`` names the payload member that makes up most of it (``attributes.tags``),
    when the writer handed over the payload; the HTTP layer answers 413 naming it.
    """

    def __init__(self, *, event_type: str, key: str, size: int, field: str | None) -> None:
        where = f" (mostly {field})" if field else ""
        super().__init__(
            f"{event_type} event of {key} is {size} bytes encoded{where};"
            f" at most {MAX_EVENT_BYTES} are published"
        )
        self.event_type = event_type
        self.key = key
        self.size = size
        self.field = field


def largest_member(payload: Mapping[str, Any], *, depth: int = 3) -> str | None:
    """The dotted path of the member of ``payload`` that takes most of its encoded size,
    descending into objects (``attributes.tags``)."""
    path: list[str] = []
    node: Any = payload
    while len(path) < depth and isinstance(node, Mapping) and node:
        name, node = max(node.items(), key=lambda item: len(to_json(item[1])))
        path.append(str(name))
    return ".".join(path) or None


@dataclass(frozen=True)
class OutboxRecord:
    """A row as the relay reads it."""

    seq: int
    topic: str
    key: str
    value: bytes | None
    """None: a tombstone (a Kafka record with a null value, on a compacted topic)."""
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
    value: bytes | None
    """None: a tombstone (published as a null Kafka value: the key's value is withdrawn)."""
    schema_version: int = CURRENT_SCHEMA_VERSION


async def enqueue_many(
    conn: asyncpg.Connection,
    *,
    topic: str,
    envelopes: Sequence[Envelope],
    headers: Mapping[str, str] | None = None,
) -> None:
    """Add events in order; large batches go through ``COPY``. ``headers`` are added to
    every event's Kafka headers (a republish tags its records with the snapshot id).

    Raises :class:`EventTooLargeError` (writing nothing) for an event over
    :data:`MAX_EVENT_BYTES`.
    """

    def encoded() -> Iterator[EncodedEvent]:
        for e in envelopes:
            value = e.to_bytes()
            if len(value) > MAX_EVENT_BYTES:
                raise EventTooLargeError(
                    event_type=e.type.value,
                    key=e.key,
                    size=len(value),
                    field=largest_member(e.payload),
                )
            yield EncodedEvent(e.event_id, e.key, e.type.value, value, e.schema_version)

    await enqueue_encoded(
        conn, topic=topic, events=encoded(), count=len(envelopes), headers=headers
    )


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
    the rows stream to the server. An event over :data:`MAX_EVENT_BYTES` raises
    :class:`EventTooLargeError`; the caller's transaction must then roll back.
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
        if e.value is not None and len(e.value) > MAX_EVENT_BYTES:
            raise EventTooLargeError(
                event_type=e.event_type, key=e.key, size=len(e.value), field=None
            )
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
