"""Reliable consumers: idempotency, bounded retries with backoff, dead letters, and
infrastructure outages waited out (never dead-lettered)."""

from reelpolicy_common.consumer.faults import InfrastructureError, is_infrastructure_error
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
    "InfrastructureError",
    "PermanentError",
    "RetryPolicy",
    "is_infrastructure_error",
    "process_record",
    "record_processed",
    "record_processed_many",
    "subscribe_reliably",
    "was_processed",
]
