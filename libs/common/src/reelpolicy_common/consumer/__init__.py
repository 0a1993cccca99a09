"""Reliable consumers: idempotency, bounded retries with backoff, dead letters."""

from reelpolicy_common.consumer.idempotency import (
    record_processed,
    record_processed_many,
    was_processed,
)
from reelpolicy_common.consumer.runner import (
    PermanentError,
    RetryPolicy,
    process_record,
    subscribe_reliably,
)
from reelpolicy_common.consumer.types import BatchHandler, ConsumedEvent, EventHandler

__all__ = [
    "BatchHandler",
    "ConsumedEvent",
    "EventHandler",
    "PermanentError",
    "RetryPolicy",
    "process_record",
    "record_processed",
    "record_processed_many",
    "subscribe_reliably",
    "was_processed",
]
