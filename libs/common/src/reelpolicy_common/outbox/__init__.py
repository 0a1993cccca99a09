"""Transactional outbox: enqueue inside the state change's transaction; a relay publishes."""

from reelpolicy_common.outbox.relay import OutboxRelay, RecordPublisher
from reelpolicy_common.outbox.store import NOTIFY_CHANNEL, OutboxRecord, enqueue, enqueue_many

__all__ = [
    "NOTIFY_CHANNEL",
    "OutboxRecord",
    "OutboxRelay",
    "RecordPublisher",
    "enqueue",
    "enqueue_many",
]
