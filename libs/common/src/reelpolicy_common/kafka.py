"""Kafka adapters: the outbox's record publisher and topic creation (aiokafka)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from reelpolicy_common import topics
from reelpolicy_common.outbox.store import OutboxRecord
from reelpolicy_common.telemetry import (
    context_from_headers,
    current_trace_headers,
    encode_kafka_headers,
)

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.outbox")


def make_producer(*, bootstrap_servers: str, enable_idempotence: bool) -> AIOKafkaProducer:
    """A producer tuned for the relay: acks from all replicas, small linger for batching."""
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap_servers,
        enable_idempotence=enable_idempotence,
        acks="all",
        linger_ms=2,
        max_batch_size=1 << 20,
        request_timeout_ms=15_000,
    )


class KafkaRecordPublisher:
    """Publishes outbox records in order; a PRODUCER span per record joins the writer's trace."""

    def __init__(self, producer: AIOKafkaProducer, *, timeout: float = 30.0) -> None:
        self._producer = producer
        self._timeout = timeout

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        """Send in order, then wait for every acknowledgement; all within the timeout."""
        async with asyncio.timeout(self._timeout):
            pending = []
            for record in records:
                if "traceparent" in record.headers:
                    pending.append(await self._send_traced(record))
                else:  # nothing to continue: skip the span
                    pending.append(await self._send(record, record.headers))
            await asyncio.gather(*pending)

    async def _send(self, record: OutboxRecord, headers: dict[str, str]) -> asyncio.Future[Any]:
        future: asyncio.Future[Any] = await self._producer.send(
            record.topic,
            value=record.value,
            key=record.key.encode(),
            headers=encode_kafka_headers(headers),
        )
        return future

    async def _send_traced(self, record: OutboxRecord) -> asyncio.Future[Any]:
        with _tracer.start_as_current_span(
            f"{record.topic} publish",
            context=context_from_headers(record.headers),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.destination.name": record.topic,
                "messaging.kafka.message.key": record.key,
            },
        ):
            return await self._send(record, {**record.headers, **current_trace_headers()})


async def ensure_topics(
    *, bootstrap_servers: str, names: Iterable[str] = topics.ALL_TOPICS, replication: int = 1
) -> None:
    """Create the topics that are missing, with the partition counts the services expect."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        wanted = [
            NewTopic(name, topics.partitions(name), replication)
            for name in names
            if name not in existing
        ]
        if wanted:
            with contextlib.suppress(TopicAlreadyExistsError):  # a concurrent creator won
                await admin.create_topics(wanted)
            log.info("created topics %s", [t.name for t in wanted])
    finally:
        await admin.close()
