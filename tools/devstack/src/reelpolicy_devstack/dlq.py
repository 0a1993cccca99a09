"""Replaying dead letters: re-produce ``<topic>.dlq`` records to their original topic.

The record's value, key and original headers go back unchanged (the ``dlq-*``
headers are dropped), so consumers see the same event id and stay idempotent.
A consumer group remembers what was replayed; run it again after fixing the cause.
"""

from __future__ import annotations

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from reelpolicy_common.dead_letter_gauge import replay_group
from reelpolicy_contracts import topics


async def replay_dead_letters(*, bootstrap_servers: str, topic: str, idle_ms: int = 2000) -> int:
    consumer = AIOKafkaConsumer(
        topics.dead_letter(topic),
        bootstrap_servers=bootstrap_servers,
        group_id=replay_group(topic),
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await consumer.start()
    await producer.start()
    replayed = 0
    try:
        while batch := await consumer.getmany(timeout_ms=idle_ms):
            for records in batch.values():
                for record in records:
                    headers = [(k, v) for k, v in record.headers if not k.startswith("dlq-")]
                    await producer.send_and_wait(
                        topic, record.value, key=record.key, headers=headers
                    )
                    replayed += 1
            await consumer.commit()
    finally:
        await producer.stop()
        await consumer.stop()
    return replayed
