"""What consumer handlers receive: a decoded event with where it came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.structs import ConsumerRecord

from reelpolicy_contracts.events.envelope import Envelope


@dataclass(frozen=True)
class ConsumedEvent:
    envelope: Envelope
    topic: str
    partition: int
    offset: int
    headers: dict[str, str]
    traceparent: str | None = None
    """The CONSUMER span handling this record: the parent for what the handler causes."""


EventHandler = Callable[[ConsumedEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[ConsumedEvent]], Awaitable[None]]
"""Handles a whole batch at once, all or nothing (one transaction)."""


def record_span_attributes(record: ConsumerRecord[Any, Any], *, consumer: str) -> dict[str, Any]:
    """OpenTelemetry messaging attributes of the CONSUMER span handling ``record``."""
    return {
        "messaging.system": "kafka",
        "messaging.destination.name": record.topic,
        "messaging.kafka.destination.partition": record.partition,
        "messaging.kafka.message.offset": record.offset,
        "messaging.consumer.group.name": consumer,
    }
