"""Rules consumes the policy topic (bulk) and the registry topic (per subject).

Each topic has its own consumer group (``<group>.policy`` / ``<group>.registry``), so
a long bulk run never holds up the registry partitions' group membership. Records
are handled like ``subscribe_reliably`` (retries, DLQ, commit after the batch), with
a short broker wait (``CONSUMER_FETCH_MAX_WAIT_MS``) for low latency. Handling runs
inside the consumer span, so the outbox captures the cause's trace context.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind

from reelpolicy_common import metrics, topics
from reelpolicy_common.consumer import ConsumedEvent, EventHandler, process_record
from reelpolicy_common.consumer.runner import broker_dead_letter
from reelpolicy_common.events import Envelope, decode_envelope
from reelpolicy_common.telemetry import context_from_headers, decode_kafka_headers
from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.handlers.policy_events import handle_policy_event
from reelpolicy_rules.handlers.registry_events import handle_registry_batch, handle_registry_event

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.rules")
BatchHandler = Callable[[Sequence[Envelope]], Awaitable[None]]

POLICY_CONSUMER = "rules.policy"
REGISTRY_CONSUMER = "rules.registry"


def group_ids(base: str) -> dict[str, str]:
    return {topics.POLICY: f"{base}.policy", topics.REGISTRY: f"{base}.registry"}


async def _try_batch(
    records: Sequence[ConsumerRecord[Any, Any]], *, consumer: str, batch: BatchHandler
) -> bool:
    """Handle ``records`` in one transaction (by key, in partition order); False on failure.

    Records of one key keep their order; keys are taken in sorted order (a stable lock
    order). On any failure nothing was committed and the caller handles the records one
    by one (retries, dead letters); the handlers are idempotent either way.
    """
    try:
        items = [(r, decode_envelope(r.value)) for r in records]
    except Exception:  # a bad record: the per-record path dead-letters it
        return False
    items.sort(key=lambda item: item[0].key or b"")
    try:
        first = items[0][0]
        with _tracer.start_as_current_span(
            f"{first.topic} process batch",
            context=context_from_headers(decode_kafka_headers(first.headers)),
            kind=SpanKind.CONSUMER,
            attributes={"messaging.batch.message_count": len(items)},
        ):
            await batch([e for _, e in items])
    except Exception as exc:  # fall back to the per-record path
        log.info("batch of %d record(s) failed (%r); handling them one by one", len(items), exc)
        return False
    for r, _ in items:
        metrics.CONSUMER_MESSAGES.labels(consumer, r.topic, "processed").inc()
    return True


def _subscribe(
    rules: Rules, *, topic: str, consumer: str, handler: EventHandler,
    batch: BatchHandler | None = None,
) -> None:  # fmt: skip
    broker = rules.runtime.broker
    dead_letter = broker_dead_letter(broker, consumer=consumer)
    subscriber = broker.subscriber(
        topic,
        group_id=group_ids(rules.settings.consumer_group)[topic],
        batch=True,
        max_records=rules.settings.kafka_max_poll_records,
        fetch_max_wait_ms=rules.settings.consumer_fetch_max_wait_ms,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        title=f"{consumer}:{topic}",
    )
    retry = rules.runtime.retry_policy

    @subscriber
    async def consume(body: list[Any], message: KafkaMessage) -> None:
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message
        size = rules.settings.registry_batch_size
        if batch is not None and len(records) > 1 and size > 1:
            for i in range(0, len(records), size):
                chunk = records[i : i + size]
                if not await _try_batch(chunk, consumer=consumer, batch=batch):
                    for record in chunk:
                        await process_record(
                            record, consumer=consumer, handler=handler, retry=retry,
                            dead_letter=dead_letter,
                        )  # fmt: skip
            await message.ack()
            return
        for record in records:
            await process_record(
                record, consumer=consumer, handler=handler, retry=retry, dead_letter=dead_letter
            )
        await message.ack()


def register_consumers(rules: Rules) -> None:
    async def on_policy(event: ConsumedEvent) -> None:
        await handle_policy_event(
            uow=rules.uow, cache=rules.cache, book=rules.book, envelope=event.envelope,
            consumer=POLICY_CONSUMER, today=rules.today(),
            trace_limit=rules.settings.bulk_trace_limit,
        )  # fmt: skip

    async def on_registry(event: ConsumedEvent) -> None:
        await handle_registry_event(
            uow=rules.uow, book=rules.book, envelope=event.envelope,
            consumer=REGISTRY_CONSUMER, today=rules.today(),
        )  # fmt: skip

    _subscribe(rules, topic=topics.POLICY, consumer=POLICY_CONSUMER, handler=on_policy)

    async def on_registry_batch(envelopes: Sequence[Envelope]) -> None:
        await handle_registry_batch(
            uow=rules.uow, book=rules.book, envelopes=envelopes, consumer=REGISTRY_CONSUMER,
            today=rules.today(),
        )  # fmt: skip

    _subscribe(
        rules, topic=topics.REGISTRY, consumer=REGISTRY_CONSUMER, handler=on_registry,
        batch=on_registry_batch,
    )  # fmt: skip
