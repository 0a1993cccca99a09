"""Committing consumed offsets off the handling path (Kafka's ``commitAsync``).

A subscriber that waited for each batch's offset commit (a broker round trip) before
it fetched the next batch would make every record behind it wait too. Instead the
handled batch's offsets are handed to an :class:`OffsetCommitter`, which commits
them in the background, at most one commit in flight, the newest offsets of every
partition at once. Only offsets of handled (or dead-lettered) records are ever
committed, and each is the next offset to read, so a crash, a shutdown or a failed
commit can only redeliver records already handled, which the idempotent handlers
skip; it never skips one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.structs import ConsumerRecord, TopicPartition

log = logging.getLogger(__name__)


class CommittingConsumer(Protocol):
    """What is used of ``AIOKafkaConsumer``: committing explicit offsets."""

    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


class OffsetCommitter:
    """Commits the offsets after handled records in the background, one commit at a time."""

    def __init__(self) -> None:
        self._pending: dict[TopicPartition, int] = {}
        self._consumer: CommittingConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def handled(
        self, consumer: CommittingConsumer, records: Sequence[ConsumerRecord[Any, Any]]
    ) -> None:
        """Queue a commit of the offsets after ``records`` (all handled) and return."""
        if consumer is not self._consumer:
            self._pending = {}  # a new consumer: the old one's positions are not its own
            self._consumer = consumer
        for record in records:
            self._pending[TopicPartition(record.topic, record.partition)] = record.offset + 1
        if self._pending and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._commit_pending())

    async def flush(self) -> None:
        """Wait until every queued offset has been committed (or failed to be)."""
        while self._task is not None and not self._task.done():
            await asyncio.shield(self._task)

    async def _commit_pending(self) -> None:
        while self._pending and self._consumer is not None:
            consumer, offsets, self._pending = self._consumer, self._pending, {}
            try:
                await consumer.commit(offsets)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                # e.g. a rebalance took a partition away: its new owner starts from the
                # last committed offset and skips what was handled here
                log.warning("offset commit failed (%r); those records may be redelivered", exc)
