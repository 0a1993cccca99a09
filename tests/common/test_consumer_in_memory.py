"""The in-memory ``TestKafkaBroker`` path: no partitions to pause, outages waited inline."""

from __future__ import annotations

from typing import Any

from faststream.kafka import KafkaBroker, TestKafkaBroker

from reelpolicy_common.consumer import ConsumedEvent, RetryPolicy, subscribe_reliably
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType

RETRY = RetryPolicy(max_attempts=2, initial_seconds=0.01, max_seconds=0.02, outage_max_seconds=0.05)


async def test_an_infrastructure_error_is_retried_in_place_without_a_dead_letter() -> None:
    broker = KafkaBroker("127.0.0.1:1", enable_idempotence=False, logger=None)
    calls: list[str] = []
    dead: list[Any] = []

    async def handler(event: ConsumedEvent) -> None:
        calls.append(event.envelope.key)
        if len(calls) <= 4:  # more failures than the record retries allow
            raise ConnectionResetError(104, "Connection reset by peer")

    subscribe_reliably(
        broker, topic_names=["t"], group_id="g", consumer="mem", handler=handler, retry=RETRY
    )

    @broker.subscriber(topics.dead_letter("t"), batch=True)
    async def dead_letters(body: Any) -> None:
        dead.append(body)

    event = Envelope(type=EventType.enterprise_upserted, producer="test", key="k", payload={})
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(event.to_bytes(), topic="t")
    assert calls == ["k"] * 5
    assert dead == []


async def test_a_record_error_is_still_dead_lettered_in_memory() -> None:
    broker = KafkaBroker("127.0.0.1:1", enable_idempotence=False, logger=None)
    dead: list[Any] = []

    async def handler(event: ConsumedEvent) -> None:
        raise RuntimeError("always broken")

    subscribe_reliably(
        broker, topic_names=["t"], group_id="g", consumer="mem", handler=handler, retry=RETRY
    )

    @broker.subscriber(topics.dead_letter("t"), batch=True)
    async def dead_letters(body: Any) -> None:
        dead.append(body)

    event = Envelope(type=EventType.enterprise_upserted, producer="test", key="k", payload={})
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(event.to_bytes(), topic="t")
    assert len(dead) == 1


async def test_a_documented_subscriber_still_hands_over_the_raw_records() -> None:
    """The catalog's typed envelopes only document a catalog topic's subscriber: records
    are not validated against them on the way in (the handlers decode the plain envelope,
    and an event the typed payload would refuse still reaches them)."""
    broker = KafkaBroker("127.0.0.1:1", enable_idempotence=False, logger=None)
    seen: list[Envelope] = []

    async def handler(event: ConsumedEvent) -> None:
        seen.append(event.envelope)

    subscribe_reliably(
        broker,
        topic_names=[topics.REGISTRY],
        group_id="g",
        consumer="mem",
        handler=handler,
        retry=RETRY,
    )
    # An empty payload: no EnterpriseChanged, so the typed envelope would refuse it.
    event = Envelope(type=EventType.enterprise_upserted, producer="test", key="k", payload={})
    async with TestKafkaBroker(broker) as test_broker:
        await test_broker.publish(event.to_bytes(), topic=topics.REGISTRY)
    assert [e.event_id for e in seen] == [event.event_id]
    assert seen[0].payload == {}
