"""Rules consumes the policy topic (bulk) and the registry topic (per subject).

Each topic has its own consumer group (``<group>.policy`` / ``<group>.registry``), so
a long bulk run never holds up the registry partitions' group membership. Records
are handled like ``subscribe_reliably`` (retries, DLQ, commit after the batch), with
a short broker wait (``CONSUMER_FETCH_MAX_WAIT_MS``) for low latency. Handling runs
inside the consumer span, so the outbox captures the cause's trace context.
"""

from __future__ import annotations

from typing import Any

from aiokafka.structs import ConsumerRecord
from faststream import AckPolicy
from faststream.kafka.annotations import KafkaMessage

from reelpolicy_common import topics
from reelpolicy_common.consumer import ConsumedEvent, EventHandler, process_record
from reelpolicy_common.consumer.runner import broker_dead_letter
from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.handlers.policy_events import handle_policy_event
from reelpolicy_rules.handlers.registry_events import handle_registry_event

POLICY_CONSUMER = "rules.policy"
REGISTRY_CONSUMER = "rules.registry"


def group_ids(base: str) -> dict[str, str]:
    return {topics.POLICY: f"{base}.policy", topics.REGISTRY: f"{base}.registry"}


def _subscribe(rules: Rules, *, topic: str, consumer: str, handler: EventHandler) -> None:
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
    _subscribe(rules, topic=topics.REGISTRY, consumer=REGISTRY_CONSUMER, handler=on_registry)
