"""Notify consumes eligibility, policy and registry events (one idempotent handler)."""

from __future__ import annotations

from reelpolicy_common import topics
from reelpolicy_common.consumer import ConsumedEvent, EventHandler, subscribe_reliably
from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_common.telemetry import current_trace_headers
from reelpolicy_notify.handlers.events import CONSUMER, UowFactory, handle_event


def event_handler(uow: UowFactory) -> EventHandler:
    async def handle(event: ConsumedEvent) -> None:
        # Runs inside the consumer's CONSUMER span: its traceparent becomes the delivery's parent.
        traceparent = current_trace_headers().get("traceparent")
        await handle_event(uow=uow, envelope=event.envelope, traceparent=traceparent)

    return handle


def register_consumers(runtime: ServiceRuntime, uow: UowFactory) -> None:
    subscribe_reliably(
        runtime.broker,
        topic_names=[topics.ELIGIBILITY, topics.POLICY, topics.REGISTRY],
        group_id=runtime.settings.consumer_group,
        consumer=CONSUMER,
        handler=event_handler(uow),
        retry=runtime.retry_policy,
        max_records=runtime.settings.kafka_max_poll_records,
        description="Eligibility changes, policy versions, enterprises and API keys.",
    )
