"""Notify consumes eligibility, policy and registry events (one idempotent handler).

A consumed batch is applied in one transaction (``handle_events``); if that fails,
its records are retried one by one (``handle_event``), then dead-lettered.
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
from reelpolicy_notify.bootstrap import Notify
from reelpolicy_notify.handlers.consumed_events import CONSUMER, handle_event, handle_events
from reelpolicy_notify.ports import UowFactory


def event_handler(uow: UowFactory) -> EventHandler:
    async def handle(event: ConsumedEvent) -> None:
        # The consumer's CONSUMER span becomes the delivery's parent.
        await handle_event(uow=uow, envelope=event.envelope, traceparent=event.traceparent)

    return handle


def batch_handler(uow: UowFactory) -> BatchHandler:
    async def handle(events: Sequence[ConsumedEvent]) -> None:
        await handle_events(uow=uow, events=[(e.envelope, e.traceparent) for e in events])

    return handle


def register_consumers(notify: Notify) -> None:
    runtime, uow = notify.runtime, notify.uow
    subscribe_reliably(
        runtime.broker,
        topic_names=[topics.ELIGIBILITY, topics.POLICY, topics.REGISTRY],
        group_id=runtime.settings.consumer_group,
        consumer=CONSUMER,
        handler=event_handler(uow),
        batch_handler=batch_handler(uow),
        retry=runtime.retry_policy,
        fetch_max_wait_ms=runtime.settings.consumer_fetch_max_wait_ms,
        max_records=runtime.settings.kafka_max_poll_records,
        description="Eligibility changes, policy versions, enterprises and API keys.",
    )
