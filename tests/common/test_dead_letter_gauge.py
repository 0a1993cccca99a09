"""The dead letters waiting for a replay, counted on the embedded broker.

Records reach ``<topic>.dlq`` one at a time (as the consumers dead-letter them); the
count is what the replay (``reelpolicy-dev replay-dlq``) has not re-produced yet.
"""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from prometheus_client import REGISTRY

from reelpolicy_common.dead_letter_gauge import count_waiting, watch_dead_letters
from reelpolicy_common.kafka import admin_client, ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_devstack.dlq import replay_dead_letters
from reelpolicy_devstack.servers import free_port
from reelpolicy_registry.config import Settings
from service_harness import eventually, settings_for, unique_topic

pytestmark = pytest.mark.servers


async def dead_letter(bootstrap: str, topic: str, count: int) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for i in range(count):  # one record per batch, as the consumers publish them
            await producer.send_and_wait(topics.dead_letter(topic), f"v{i}".encode(), key=b"k")
    finally:
        await producer.stop()


async def waiting(bootstrap: str, names: list[str]) -> dict[str, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    admin = admin_client(bootstrap_servers=bootstrap)
    await consumer.start()
    await admin.start()
    try:
        return await count_waiting(consumer, admin, names)
    finally:
        await consumer.stop()
        await admin.close()


def gauge(topic: str) -> float | None:
    return REGISTRY.get_sample_value("reelpolicy_dead_letters_waiting", {"topic": topic})


async def test_waiting_counts_what_the_replay_has_not_reproduced(bootstrap_servers: str) -> None:
    topic, untouched, absent = unique_topic("dlq"), unique_topic("dlq"), unique_topic("dlq")
    names = [topic, topics.dead_letter(topic), untouched, topics.dead_letter(untouched)]
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=names)
    nothing = {topic: 0, untouched: 0, absent: 0}  # absent: no .dlq topic, nothing waits
    assert await waiting(bootstrap_servers, [topic, untouched, absent]) == nothing

    await dead_letter(bootstrap_servers, topic, 3)
    assert await waiting(bootstrap_servers, [topic, untouched]) == {topic: 3, untouched: 0}

    assert await replay_dead_letters(bootstrap_servers=bootstrap_servers, topic=topic) == 3
    assert await waiting(bootstrap_servers, [topic]) == {topic: 0}

    await dead_letter(bootstrap_servers, topic, 2)
    assert await waiting(bootstrap_servers, [topic]) == {topic: 2}


def settings(bootstrap: str) -> Settings:
    return settings_for(  # type: ignore[no-any-return]
        Settings, database_url="postgresql://unused@127.0.0.1/unused", bootstrap_servers=bootstrap
    )


async def test_the_watch_sets_the_gauge(bootstrap_servers: str) -> None:
    topic = unique_topic("dlq")
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topics.dead_letter(topic)])
    await dead_letter(bootstrap_servers, topic, 4)
    watch = asyncio.create_task(
        watch_dead_letters(settings(bootstrap_servers), [topic], every_seconds=0.1)
    )
    try:
        await eventually(lambda: gauge(topic) == 4)
        await dead_letter(bootstrap_servers, topic, 1)
        await eventually(lambda: gauge(topic) == 5)
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)


async def test_the_watch_goes_on_while_the_broker_cannot_be_reached() -> None:
    topic = unique_topic("dlq")
    watch = asyncio.create_task(
        watch_dead_letters(
            settings(f"127.0.0.1:{free_port()}"), [topic], every_seconds=0.05, timeout_seconds=0.3
        )
    )
    try:
        await asyncio.sleep(1.5)  # several failed counts
        assert not watch.done()
        assert gauge(topic) is None
    finally:
        watch.cancel()
        await asyncio.gather(watch, return_exceptions=True)
