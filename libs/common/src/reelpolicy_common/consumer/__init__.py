"""Reliable consumers: idempotency, bounded retries with backoff, dead letters."""

from reelpolicy_common.consumer.idempotency import record_processed
from reelpolicy_common.consumer.runner import (
    ConsumedEvent,
    EventHandler,
    PermanentError,
    RetryPolicy,
    process_record,
    subscribe_reliably,
)

__all__ = [
    "ConsumedEvent",
    "EventHandler",
    "PermanentError",
    "RetryPolicy",
    "process_record",
    "record_processed",
    "subscribe_reliably",
]
