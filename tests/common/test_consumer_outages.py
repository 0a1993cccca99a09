"""Outages of the infrastructure are waited out: nothing dead-lettered, nobody evicted."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import TopicPartition
from faststream.kafka import KafkaBroker
from prometheus_client import REGISTRY

from reelpolicy_common.consumer import (
    ConsumedEvent,
    RetryPolicy,
    record_processed,
    record_processed_many,
    subscribe_reliably,
)
from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.db.pool import ConnectionLimits, create_pool
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from service_harness import eventually, unique_topic
from tcp_fault_proxy import FaultProxy, postgres_proxy, through

pytestmark = pytest.mark.servers

# Record errors: 3 quick attempts, then the DLQ. Outages: waits of up to 1 s, no cap.
RETRY = RetryPolicy(max_attempts=3, initial_seconds=0.05, max_seconds=0.1, outage_max_seconds=1)
# A statement or connection attempt that hangs fails soon, well within the poll interval.
LIMITS = ConnectionLimits(
    connect_timeout_seconds=1.5, command_timeout_seconds=1.5, tcp_keepalive_seconds=1
)
MAX_POLL_INTERVAL_MS = 6000


@pytest.fixture
async def database(fresh_database: str) -> str:
    conn = await asyncpg.connect(fresh_database)
    await apply_migrations(conn, common_migrations())
    await conn.execute(
        "CREATE TABLE effects (key text PRIMARY KEY CHECK (key NOT LIKE 'poison%'), n int)"
    )
    await conn.close()
    return fresh_database


@pytest.fixture
def proxy(database: str) -> Iterator[FaultProxy]:
    """A TCP path to the embedded server's unix socket that the test can break."""
    proxy = postgres_proxy(database)
    yield proxy
    proxy.stop()


@pytest.fixture
async def pool(database: str, proxy: FaultProxy) -> AsyncIterator[asyncpg.Pool]:
    pool = await create_pool(through(proxy, database), max_size=4, limits=LIMITS)
    yield pool
    await pool.close()


@pytest.fixture
async def topic(bootstrap_servers: str) -> str:
    name = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[name, topics.dead_letter(name)])
    return name


class Assignments(ConsumerRebalanceListener):  # type: ignore[misc]
    """Counts the member's joins and losses: a member evicted for not polling loses
    its partitions and joins again."""

    def __init__(self) -> None:
        self.joins = 0
        self.losses = 0

    async def on_partitions_revoked(self, revoked: Any) -> None:
        self.losses += bool(revoked)

    async def on_partitions_assigned(self, assigned: Any) -> None:
        self.joins += 1


@contextlib.asynccontextmanager
async def consuming(
    bootstrap: str,
    topic: str,
    *,
    consumer: str,
    handler: Any,
    batch_handler: Any = None,
    max_poll_interval_ms: int = MAX_POLL_INTERVAL_MS,
) -> AsyncIterator[Assignments]:
    assignments = Assignments()
    broker = KafkaBroker(bootstrap, enable_idempotence=False, logger=None)
    subscribe_reliably(
        broker,
        topic_names=[topic],
        group_id=f"g-{topic}",
        consumer=consumer,
        handler=handler,
        batch_handler=batch_handler,
        retry=RETRY,
        fetch_max_wait_ms=100,
        max_poll_interval_ms=max_poll_interval_ms,
        listener=assignments,
    )
    await broker.start()
    try:
        await eventually(lambda: assignments.joins, timeout=30)
        yield assignments
    finally:
        await broker.stop()


async def produce(broker: KafkaBroker, topic: str, *keys: str) -> None:
    for key in keys:
        event = Envelope(type=EventType.enterprise_upserted, producer="test", key=key, payload={})
        await broker.publish(event.to_bytes(), topic=topic, key=key.encode())


def applying(pool: asyncpg.Pool, consumer: str) -> Any:
    async def apply(event: ConsumedEvent) -> None:
        async with pool.acquire() as conn, conn.transaction():
            if await record_processed(conn, consumer=consumer, event_id=event.envelope.event_id):
                await conn.execute(
                    "INSERT INTO effects VALUES ($1, 1) ON CONFLICT (key) DO UPDATE"
                    " SET n = effects.n + 1",
                    event.envelope.key,
                )

    return apply


async def applied(database: str) -> dict[str, int]:
    conn = await asyncpg.connect(database)  # around the proxy
    try:
        return {r["key"]: r["n"] for r in await conn.fetch("SELECT key, n FROM effects")}
    finally:
        await conn.close()


async def dead_lettered(bootstrap: str, topic: str) -> int:
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap)
    await probe.start()
    try:
        dlq = topics.dead_letter(topic)
        assert dlq in await probe.topics()  # fetches the metadata too
        partitions = [TopicPartition(dlq, p) for p in probe.partitions_for_topic(dlq) or []]
        return sum((await probe.end_offsets(partitions)).values())
    finally:
        await probe.stop()


def infrastructure_retries(consumer: str) -> float:
    value = REGISTRY.get_sample_value(
        "reelpolicy_consumer_infrastructure_retries_total", {"consumer": consumer}
    )
    return value or 0.0


async def test_a_database_outage_longer_than_the_retries_is_waited_out(
    database: str, proxy: FaultProxy, pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """15 s without the database (black-holed, then refused) while events keep coming:
    every event is applied once when it is back, none is dead-lettered, and the member
    kept its place in the group although the outage is longer than its poll interval."""
    consumer = f"outage-{uuid.uuid4().hex[:6]}"
    producer = KafkaBroker(bootstrap_servers, enable_idempotence=False, logger=None)
    await producer.connect()
    keys = [f"k{i}" for i in range(40)]
    try:
        async with consuming(
            bootstrap_servers, topic, consumer=consumer, handler=applying(pool, consumer)
        ) as assignments:
            await produce(producer, topic, *keys[:5])
            await eventually(lambda: _has(database, keys[:5]))

            proxy.blackhole()  # packets vanish: statements and new connections hang
            for key in keys[5:25]:
                await produce(producer, topic, key)
                await asyncio.sleep(0.5)
            proxy.cut()
            proxy.refuse()  # the server is gone: connections are refused at once
            for key in keys[25:35]:
                await produce(producer, topic, key)
                await asyncio.sleep(0.5)
            proxy.heal()
            await produce(producer, topic, *keys[35:])

            await eventually(lambda: _has(database, keys), timeout=20)
            assert (assignments.joins, assignments.losses) == (1, 0)  # never evicted
            assert await dead_lettered(bootstrap_servers, topic) == 0
            assert await applied(database) == {key: 1 for key in keys}
            assert infrastructure_retries(consumer) >= 3  # it paused, more than once
    finally:
        await producer.stop()


async def test_a_batch_failed_by_the_infrastructure_is_not_handled_one_by_one(
    database: str, proxy: FaultProxy, pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """A batch handler that cannot reach the database leaves its whole chunk for later;
    it never falls back to record-by-record handling (which would dead-letter each)."""
    consumer = f"batch-{uuid.uuid4().hex[:6]}"
    one_by_one: list[str] = []
    batch_calls = 0

    async def apply_batch(events: Sequence[ConsumedEvent]) -> None:
        nonlocal batch_calls
        batch_calls += 1
        async with pool.acquire() as conn, conn.transaction():
            ids = [e.envelope.event_id for e in events]
            new = await record_processed_many(conn, consumer=consumer, event_ids=ids)
            for event in events:
                if event.envelope.event_id in new:
                    await conn.execute(
                        "INSERT INTO effects VALUES ($1, 1)"
                        " ON CONFLICT (key) DO UPDATE SET n = effects.n + 1",
                        event.envelope.key,
                    )

    async def apply_one(event: ConsumedEvent) -> None:
        one_by_one.append(event.envelope.key)
        await applying(pool, consumer)(event)

    producer = KafkaBroker(bootstrap_servers, enable_idempotence=False, logger=None)
    await producer.connect()
    keys = [f"b{i}" for i in range(30)]
    try:
        async with consuming(
            bootstrap_servers,
            topic,
            consumer=consumer,
            handler=apply_one,
            batch_handler=apply_batch,
        ) as assignments:
            proxy.cut()
            proxy.refuse()
            await produce(producer, topic, *keys)
            await asyncio.sleep(3)  # ten times what the record retries take
            proxy.heal()
            await eventually(lambda: _has(database, keys))
            assert (assignments.joins, assignments.losses) == (1, 0)
        assert one_by_one == []
        assert batch_calls >= 3  # tried again, whole, after each wait
        assert infrastructure_retries(consumer) >= 2
        assert await dead_lettered(bootstrap_servers, topic) == 0
        assert await applied(database) == {key: 1 for key in keys}
    finally:
        await producer.stop()


async def test_a_record_the_database_refuses_is_still_dead_lettered_after_its_retries(
    database: str, pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """A constraint the data breaks is the record's fault: bounded retries, then the DLQ,
    and the records behind it go on."""
    consumer = f"poison-{uuid.uuid4().hex[:6]}"
    calls: list[str] = []
    apply = applying(pool, consumer)

    async def counting(event: ConsumedEvent) -> None:
        calls.append(event.envelope.key)
        await apply(event)

    producer = KafkaBroker(bootstrap_servers, enable_idempotence=False, logger=None)
    await producer.connect()
    try:
        async with consuming(bootstrap_servers, topic, consumer=consumer, handler=counting):
            await produce(producer, topic, "before", "poison-1", "after")
            await eventually(lambda: _has(database, ["before", "after"]))
            await eventually(lambda: dead_lettered(bootstrap_servers, topic))
    finally:
        await producer.stop()
    assert calls.count("poison-1") == RETRY.max_attempts
    assert await dead_lettered(bootstrap_servers, topic) == 1
    assert await applied(database) == {"before": 1, "after": 1}


async def _has(database: str, keys: Sequence[str]) -> bool:
    done = await applied(database)
    return all(key in done for key in keys)


async def test_stopping_during_a_pause_commits_what_was_handled_and_nothing_after(
    database: str, pool: asyncpg.Pool, bootstrap_servers: str, topic: str
) -> None:
    """Shut down while waiting out an outage: the committed offset is the first record
    not handled, where a consumer started later in the group goes on."""
    consumer = f"stop-{uuid.uuid4().hex[:6]}"
    seen: list[str] = []
    apply = applying(pool, consumer)

    async def handler(event: ConsumedEvent) -> None:
        seen.append(event.envelope.key)
        if event.envelope.key >= "s3":
            raise ConnectionRefusedError(111, "Connection refused")
        await apply(event)

    keys = [f"s{i}" for i in range(6)]
    producer = KafkaBroker(bootstrap_servers, enable_idempotence=False, logger=None)
    await producer.connect()
    try:
        await produce(producer, topic, *keys)
        async with consuming(bootstrap_servers, topic, consumer=consumer, handler=handler):
            await eventually(lambda: seen.count("s3") >= 3)  # paused, resumed, paused again
        assert await applied(database) == {"s0": 1, "s1": 1, "s2": 1}
        probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, group_id=f"g-{topic}")
        await probe.start()
        try:
            assert await probe.committed(TopicPartition(topic, 0)) == 3  # s3's offset
        finally:
            await probe.stop()

        assert await dead_lettered(bootstrap_servers, topic) == 0
    finally:
        await producer.stop()


async def test_pooled_connections_over_tcp_have_keepalive_and_a_user_timeout(
    pool: asyncpg.Pool,
) -> None:
    async with pool.acquire() as conn:
        sock = conn._con._transport.get_extra_info("socket")  # no public way to the socket
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == 1
        assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 3000


async def test_a_slow_batch_returns_to_polling_before_the_member_would_be_evicted(
    bootstrap_servers: str, topic: str
) -> None:
    """Handling 12 records of 0.4 s each takes longer than the poll interval (4 s): the
    subscriber polls between parts of the batch, keeps its place, handles each once."""
    seen: list[str] = []

    async def slow(event: ConsumedEvent) -> None:
        await asyncio.sleep(0.4)
        seen.append(event.envelope.key)

    keys = [f"w{i:02}" for i in range(12)]
    producer = KafkaBroker(bootstrap_servers, enable_idempotence=False, logger=None)
    await producer.connect()
    try:
        events = [
            Envelope(type=EventType.enterprise_upserted, producer="t", key=k, payload={})
            for k in keys
        ]
        # one record batch: one fetch brings them all
        await producer.publish_batch(*(e.to_bytes() for e in events), topic=topic)
        async with consuming(
            bootstrap_servers, topic, consumer="slow", handler=slow, max_poll_interval_ms=4000
        ) as joined:
            await eventually(lambda: len(seen) >= len(keys), timeout=20)
            await asyncio.sleep(1)  # an evicted member gives its partitions up once it polls
            assert (joined.joins, joined.losses) == (1, 0)
        assert seen == keys
    finally:
        await producer.stop()
