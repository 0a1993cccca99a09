"""Reliable consumers on the real broker: idempotency, retries, dead letters, commits."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from faststream.kafka import KafkaBroker

from reelpolicy_common.consumer import (
    ConsumedEvent,
    PermanentError,
    RetryPolicy,
    record_processed,
    subscribe_reliably,
)
from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from service_harness import eventually, unique_topic

pytestmark = pytest.mark.servers

FAST_RETRY = RetryPolicy(max_attempts=3, initial_seconds=0.01, max_seconds=0.05)


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_database)
    await apply_migrations(conn, common_migrations())
    await conn.execute("CREATE TABLE effects (key text PRIMARY KEY, n int NOT NULL)")
    await conn.close()
    pool = await create_pool(fresh_database)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(bootstrap_servers: str) -> str:
    name = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[name, topics.dead_letter(name)])
    return name


def envelope(key: str = "k", **payload: Any) -> Envelope:
    return Envelope(type=EventType.enterprise_upserted, producer="test", key=key, payload=payload)


async def produce(bootstrap: str, topic: str, *values: bytes, key: bytes = b"k") -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key, headers=[("origin", b"test")])
    finally:
        await producer.stop()


@contextlib.asynccontextmanager
async def consuming(
    bootstrap: str, topic: str, handler: Any, group: str = "g", batch_handler: Any = None
) -> AsyncIterator[KafkaBroker]:
    broker = KafkaBroker(bootstrap, enable_idempotence=False, logger=None)
    subscribe_reliably(
        broker,
        topic_names=[topic],
        group_id=f"{group}-{topic}",
        consumer="test",
        handler=handler,
        retry=FAST_RETRY,
        batch_handler=batch_handler,
    )
    await broker.start()
    try:
        yield broker
    finally:
        await broker.stop()


async def dead_letters(bootstrap: str, topic: str, expected: int) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topics.dead_letter(topic), bootstrap_servers=bootstrap, auto_offset_reset="earliest"
    )
    await consumer.start()
    found: list[Any] = []
    try:
        async with asyncio.timeout(10):
            while len(found) < expected:
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    found.extend(records)
    finally:
        await consumer.stop()
    return found


def counting_handler(pool: asyncpg.Pool) -> Any:
    async def handle(event: ConsumedEvent) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if not await record_processed(conn, consumer="test", event_id=event.envelope.event_id):
                return
            await conn.execute(
                "INSERT INTO effects VALUES ($1, 1) ON CONFLICT (key) DO UPDATE"
                " SET n = effects.n + 1",
                event.envelope.key,
            )

    return handle


async def effect(pool: asyncpg.Pool, key: str) -> int | None:
    value = await pool.fetchval("SELECT n FROM effects WHERE key = $1", key)
    return None if value is None else int(value)


async def test_a_redelivered_event_changes_nothing(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    once = envelope("a").to_bytes()
    other = envelope("b").to_bytes()
    async with consuming(bootstrap_servers, topic, counting_handler(pool)):
        await produce(bootstrap_servers, topic, once, once, other, once)

        async def both_done() -> bool:
            return await effect(pool, "b") == 1

        await eventually(both_done)
    assert await effect(pool, "a") == 1


async def test_a_poison_message_goes_to_the_dlq_and_the_partition_moves_on(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    async with consuming(bootstrap_servers, topic, counting_handler(pool)):
        await produce(bootstrap_servers, topic, b"{not json", envelope("after").to_bytes())

        async def processed_after() -> bool:
            return await effect(pool, "after") == 1

        await eventually(processed_after)
    [dead] = await dead_letters(bootstrap_servers, topic, 1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert dead.value == b"{not json"
    assert headers["dlq-original-topic"] == topic
    assert headers["dlq-attempts"] == "1"
    assert "ValidationError" in headers["dlq-error"]
    assert headers["origin"] == "test"  # the original headers travel with it


async def test_transient_failures_are_retried_then_succeed(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    calls = 0
    inner = counting_handler(pool)

    async def flaky(event: ConsumedEvent) -> None:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise ConnectionError("database blinked")
        await inner(event)

    async with consuming(bootstrap_servers, topic, flaky):
        await produce(bootstrap_servers, topic, envelope("x").to_bytes())

        async def done() -> bool:
            return await effect(pool, "x") == 1

        await eventually(done)
    assert calls == 3


async def test_retries_are_bounded_then_dead_lettered_with_the_error(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    calls = 0
    inner = counting_handler(pool)

    async def failing_for_k1(event: ConsumedEvent) -> None:
        nonlocal calls
        if event.envelope.key == "bad":
            calls += 1
            raise RuntimeError("always broken")
        await inner(event)

    async with consuming(bootstrap_servers, topic, failing_for_k1):
        await produce(bootstrap_servers, topic, envelope("bad").to_bytes())
        await produce(bootstrap_servers, topic, envelope("good").to_bytes())

        async def good_done() -> bool:
            return await effect(pool, "good") == 1

        await eventually(good_done)
    assert calls == FAST_RETRY.max_attempts
    [dead] = await dead_letters(bootstrap_servers, topic, 1)
    headers = {k: v.decode() for k, v in dead.headers}
    assert headers["dlq-attempts"] == str(FAST_RETRY.max_attempts)
    assert headers["dlq-error"] == "RuntimeError: always broken"


async def test_permanent_errors_skip_the_retries(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    calls = 0

    async def refuses(event: ConsumedEvent) -> None:
        nonlocal calls
        calls += 1
        raise PermanentError("payload makes no sense")

    async with consuming(bootstrap_servers, topic, refuses):
        await produce(bootstrap_servers, topic, envelope("p").to_bytes())
        await dead_letters(bootstrap_servers, topic, 1)
    assert calls == 1


async def test_offsets_are_committed_after_success_only(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """A consumer restarted in the same group resumes after what it committed."""
    async with consuming(bootstrap_servers, topic, counting_handler(pool), group="resume"):
        await produce(bootstrap_servers, topic, envelope("first").to_bytes())

        async def first_done() -> bool:
            return await effect(pool, "first") == 1

        await eventually(first_done)
    seen: list[str] = []

    async def recorder(event: ConsumedEvent) -> None:
        seen.append(event.envelope.key)

    await produce(bootstrap_servers, topic, envelope("second").to_bytes())
    async with consuming(bootstrap_servers, topic, recorder, group="resume"):
        await eventually(lambda: seen)
        await asyncio.sleep(0.5)
    assert seen == ["second"]


async def test_stopping_lets_the_in_flight_batch_finish_and_commit(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """Graceful shutdown: stop() waits for the handler, then the offset is committed."""
    from aiokafka.structs import TopicPartition

    started = asyncio.Event()
    finished: list[str] = []

    async def slow(event: ConsumedEvent) -> None:
        started.set()
        await asyncio.sleep(1.5)
        finished.append(event.envelope.key)

    broker = KafkaBroker(
        bootstrap_servers, enable_idempotence=False, logger=None, graceful_timeout=10
    )
    group = f"graceful-{topic}"
    subscribe_reliably(
        broker, topic_names=[topic], group_id=group, consumer="test", handler=slow, retry=FAST_RETRY
    )
    await broker.start()
    await produce(bootstrap_servers, topic, envelope("in-flight").to_bytes())
    await asyncio.wait_for(started.wait(), 20)
    await broker.stop()  # while the handler is still sleeping
    assert finished == ["in-flight"]

    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=group)
    await probe.start()
    try:
        assert await probe.committed(TopicPartition(topic, 0)) == 1  # next offset to read
    finally:
        await probe.stop()


async def test_a_batch_goes_whole_to_the_batch_handler_and_a_failed_one_record_by_record(
    pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """One transaction per batch; a poison record makes its batch fall back to one by
    one, where only that record is dead-lettered and the others are applied once."""
    batches: list[list[str]] = []
    one_by_one: list[str] = []
    apply_one = counting_handler(pool)

    async def handle_batch(events: Sequence[ConsumedEvent]) -> None:
        batches.append([e.envelope.key for e in events])
        assert all(e.traceparent is None or e.traceparent.startswith("00-") for e in events)
        async with pool.acquire() as conn, conn.transaction():
            for event in events:
                if event.envelope.payload.get("poison"):
                    raise ValueError("poison")
                await conn.execute(
                    "INSERT INTO effects VALUES ($1, 1) ON CONFLICT (key) DO UPDATE"
                    " SET n = effects.n + 1",
                    event.envelope.key,
                )
                await record_processed(conn, consumer="test", event_id=event.envelope.event_id)

    async def handle_one(event: ConsumedEvent) -> None:
        one_by_one.append(event.envelope.key)
        if event.envelope.payload.get("poison"):
            raise PermanentError("poison")
        await apply_one(event)

    first = [envelope(f"a{i}").to_bytes() for i in range(3)]
    poison = envelope("bad", poison=True).to_bytes()
    await produce(bootstrap_servers, topic, *first, poison, envelope("a3").to_bytes())
    async with consuming(bootstrap_servers, topic, handle_one, batch_handler=handle_batch):
        await eventually(lambda: _applied(pool, ["a0", "a1", "a2", "a3"]))
        assert batches == [["a0", "a1", "a2", "bad", "a3"]]  # tried whole, rolled back
        assert one_by_one == ["a0", "a1", "a2", "bad", "a3"]
        (letter,) = await dead_letters(bootstrap_servers, topic, 1)
        assert letter.value == poison
        await produce(bootstrap_servers, topic, *(envelope(f"b{i}").to_bytes() for i in range(4)))
        await eventually(lambda: _applied(pool, ["b0", "b1", "b2", "b3"]))
    assert sum(len(b) for b in batches[1:]) == 4  # the good batch(es): no fallback
    assert one_by_one == ["a0", "a1", "a2", "bad", "a3"]
    for key in ["a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3"]:
        assert await effect(pool, key) == 1


async def _applied(pool: asyncpg.Pool, keys: list[str]) -> bool:
    return all([await effect(pool, key) == 1 for key in keys])
