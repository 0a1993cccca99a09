"""Rules consumes the policy topic (bulk) and the registry topic (per subject).

Each topic has its own consumer group (``<group>.policy`` / ``<group>.registry``), so
a long bulk run never holds up the registry partitions' group membership. Both go
through ``subscribe_reliably`` (retries, DLQ, commit after the batch); registry
records are applied ``REGISTRY_BATCH_SIZE`` to a transaction. Handling runs inside
the consumer spans, so the outbox captures the cause's trace context.
"""

from __future__ import annotations

from collections.abc import Sequence

from reelpolicy_common.consumer import (
    BatchHandler,
    ConsumedEvent,
    EventHandler,
    subscribe_reliably,
)
from reelpolicy_contracts import topics
from reelpolicy_rules.adapters.consumer_groups import group_ids
from reelpolicy_rules.bootstrap import Rules
from reelpolicy_rules.handlers.policy_events import handle_policy_event
from reelpolicy_rules.handlers.registry_events import handle_registry_batch, handle_registry_event

POLICY_CONSUMER = "rules.policy"
REGISTRY_CONSUMER = "rules.registry"


def _subscribe(
    rules: Rules,
    *,
    topic: str,
    consumer: str,
    handler: EventHandler,
    fetch_max_wait_ms: int,
    batch: BatchHandler | None = None,
) -> None:
    subscribe_reliably(
        rules.runtime.broker,
        topic_names=[topic],
        group_id=group_ids(rules.settings.consumer_group)[topic],
        consumer=consumer,
        handler=handler,
        retry=rules.runtime.retry_policy,
        max_records=rules.settings.kafka_max_poll_records,
        fetch_max_wait_ms=fetch_max_wait_ms,
        batch_handler=batch,
        batch_size=rules.settings.registry_batch_size,
    )


def register_consumers(rules: Rules) -> None:
    async def on_policy(event: ConsumedEvent) -> None:
        await handle_policy_event(
            uow=rules.uow,
            cache=rules.cache,
            book=rules.book,
            envelope=event.envelope,
            consumer=POLICY_CONSUMER,
            today=rules.today(),
            trace_limit=rules.settings.bulk_trace_limit,
            commit_rows=rules.settings.bulk_commit_rows,
        )

    async def on_registry(event: ConsumedEvent) -> None:
        await handle_registry_event(
            uow=rules.uow,
            book=rules.book,
            envelope=event.envelope,
            consumer=REGISTRY_CONSUMER,
            today=rules.today(),
        )

    _subscribe(
        rules,
        topic=topics.POLICY,
        consumer=POLICY_CONSUMER,
        handler=on_policy,
        fetch_max_wait_ms=rules.settings.policy_fetch_max_wait_ms,
    )

    async def on_registry_batch(events: Sequence[ConsumedEvent]) -> None:
        # Keys in sorted order (a stable lock order); each key's events keep their order.
        ordered = sorted(events, key=lambda e: e.envelope.key)
        await handle_registry_batch(
            uow=rules.uow,
            book=rules.book,
            envelopes=[e.envelope for e in ordered],
            consumer=REGISTRY_CONSUMER,
            today=rules.today(),
        )

    batch = on_registry_batch if rules.settings.registry_batch_size > 1 else None
    _subscribe(
        rules,
        topic=topics.REGISTRY,
        consumer=REGISTRY_CONSUMER,
        handler=on_registry,
        fetch_max_wait_ms=rules.settings.consumer_fetch_max_wait_ms,
        batch=batch,
    )
