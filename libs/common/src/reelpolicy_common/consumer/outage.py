"""Waiting out an infrastructure outage without leaving the consumer group.

A handler that sleeps through an outage stops polling, and a member that does not
poll within ``max_poll_interval_ms`` is dropped from its group (its partitions go to
another member, which fails the same way). So the subscriber does not wait inside
the handler: it seeks each partition back to its first record not handled, pauses
every partition assigned to it, and returns. FastStream keeps polling (paused
partitions return nothing; heartbeats go on), and after a capped exponential backoff
the partitions are resumed and fetching continues from where handling stopped.

A rebalance during the pause replaces the assignment: the partitions this member
gets are not paused and start from their committed offsets, which only ever cover
handled records. A consumer stopped during the pause simply never resumes.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord, TopicPartition

from reelpolicy_common import metrics

log = logging.getLogger(__name__)


class OutageWait:
    """One subscriber's backoff between tries while the infrastructure is down."""

    def __init__(self, *, consumer: str, initial_seconds: float, max_seconds: float) -> None:
        self._consumer = consumer
        self._initial = max(initial_seconds, 0.01)
        self._max = max(max_seconds, self._initial)
        self._failures = 0
        self._timer: asyncio.TimerHandle | None = None

    def next_delay(self) -> float:
        """The next wait: doubling from the initial one up to the cap, with jitter."""
        ceiling = min(self._max, self._initial * 2 ** min(self._failures, 32))
        self._failures += 1
        metrics.CONSUMER_INFRASTRUCTURE_RETRIES.labels(self._consumer).inc()
        return random.uniform(ceiling / 2, ceiling)

    def recovered(self) -> None:
        """Handling went through: the next outage starts from the initial wait."""
        self._failures = 0

    def pause(
        self, kafka: AIOKafkaConsumer, unhandled: Sequence[ConsumerRecord[Any, Any]]
    ) -> float:
        """Rewind to ``unhandled`` (in order), pause, resume after a backoff; the wait."""
        rewind(kafka, unhandled)
        kafka.pause(*kafka.assignment())
        delay = self.next_delay()
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._resume, kafka)
        metrics.CONSUMER_PAUSED.labels(self._consumer).set(1)
        return delay

    def _resume(self, kafka: AIOKafkaConsumer) -> None:
        self._timer = None
        metrics.CONSUMER_PAUSED.labels(self._consumer).set(0)
        try:
            kafka.resume(*kafka.paused())
        except Exception as exc:  # stopped, or its assignment is being replaced
            log.debug("%s: nothing to resume (%r)", self._consumer, exc)


def rewind(kafka: AIOKafkaConsumer, unhandled: Sequence[ConsumerRecord[Any, Any]]) -> None:
    """Fetch ``unhandled`` (records in partition order) again, from the first of each."""
    assigned = kafka.assignment()
    first: dict[TopicPartition, int] = {}
    for record in unhandled:
        first.setdefault(TopicPartition(record.topic, record.partition), record.offset)
    for partition, offset in first.items():
        if partition in assigned:  # a revoked one restarts from its committed offset
            kafka.seek(partition, offset)
