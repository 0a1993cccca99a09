"""Snapshots: a republish's records tagged with one id, and the marker that counts them.

A source service's ``republish`` writes every record's current state to its topic
with the header ``topics.SNAPSHOT_HEADER`` = the snapshot id, and, in the same
transaction, one ``snapshot.completed`` marker to ``topics.SNAPSHOTS`` keyed by that
topic (see :class:`~reelpolicy_contracts.events.payloads.SnapshotCompleted`).
"""

from __future__ import annotations

import uuid

from reelpolicy_contracts import topics
from reelpolicy_contracts.events.envelope import Envelope, EventType
from reelpolicy_contracts.events.payloads import SnapshotCompleted
from reelpolicy_contracts.ids import uuid7


def new_snapshot_id() -> uuid.UUID:
    return uuid7()


def snapshot_headers(snapshot_id: uuid.UUID) -> dict[str, str]:
    """The Kafka headers that tag a record as part of snapshot ``snapshot_id``."""
    return {topics.SNAPSHOT_HEADER: str(snapshot_id)}


def snapshot_marker(*, snapshot_id: uuid.UUID, source: str, topic: str, records: int) -> Envelope:
    """The ``snapshot.completed`` event, for ``topics.SNAPSHOTS``."""
    payload = SnapshotCompleted(
        snapshot_id=snapshot_id, source=source, topic=topic, records=records
    )
    return Envelope(
        type=EventType.snapshot_completed,
        producer=source,
        key=topic,
        payload=payload.model_dump(mode="json"),
    )
