"""The transactional outbox and its relay, on the real embedded PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer

from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.kafka import KafkaRecordPublisher, ensure_topics, make_producer
from reelpolicy_common.outbox import OutboxRecord, OutboxRelay, enqueue_many
from reelpolicy_common.outbox.relay import DELETE_SENT, MARK_SENT
from reelpolicy_common.outbox.store import EncodedEvent, enqueue_encoded
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_contracts.ids import uuid7
from reelpolicy_devstack.servers import EmbeddedBroker
from service_harness import eventually, unique_topic

pytestmark = pytest.mark.servers


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_database)
    await apply_migrations(conn, common_migrations())
    await conn.close()
    pool = await create_pool(fresh_database, max_size=6)
    yield pool
    await pool.close()


def event(key: str, n: int) -> Envelope:
    return Envelope(type=EventType.enterprise_upserted, producer="test", key=key, payload={"n": n})


async def write(pool: asyncpg.Pool, topic: str, events: Sequence[Envelope]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_many(conn, topic=topic, envelopes=events)


async def read_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 20, *, distinct: bool = False
) -> list[Envelope]:
    """Records of ``topic`` until ``expected`` arrived (distinct event ids, if asked)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: list[Envelope] = []
    try:
        async with asyncio.timeout(timeout):
            while len({e.event_id for e in seen} if distinct else seen) < expected:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    seen.extend(Envelope.model_validate_json(r.value) for r in records)
    finally:
        await consumer.stop()
    return seen


@contextlib.asynccontextmanager
async def running_relay(
    pool: asyncpg.Pool,
    bootstrap: str,
    *,
    idle_timeout: float = 60.0,
    batch_size: int = 100,
    retention_seconds: float = 3600.0,
) -> AsyncIterator[OutboxRelay]:
    producer = make_producer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    relay = OutboxRelay(
        pool=pool,
        publisher=KafkaRecordPublisher(producer, timeout=3),
        batch_size=batch_size,
        idle_timeout=idle_timeout,
        max_backoff=0.5,
        retention_seconds=retention_seconds,
    )
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()


def assert_ordered_per_key(seen: list[Envelope]) -> None:
    per_key: dict[str, list[int]] = defaultdict(list)
    for e in seen:
        per_key[e.key].append(e.payload["n"])
    for key, ns in per_key.items():
        assert ns == sorted(ns), f"key {key} out of order: {ns}"


async def pending(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def all_sent(pool: asyncpg.Pool) -> bool:
    return await pending(pool) == 0


async def test_enqueue_refuses_to_run_outside_a_transaction(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        with pytest.raises(RuntimeError, match="transaction"):
            await enqueue_many(conn, topic="x", envelopes=[event("k", 1)])


async def test_a_rolled_back_change_leaves_no_event(pool: asyncpg.Pool) -> None:
    with contextlib.suppress(ZeroDivisionError):
        async with pool.acquire() as conn, conn.transaction():
            await enqueue_many(conn, topic="x", envelopes=[event("k", 1)])
            raise ZeroDivisionError
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0


@pytest.mark.parametrize(
    ("statement", "tag", "left"),
    [(MARK_SENT, "UPDATE 1", 2), (DELETE_SENT, "DELETE 1", 1)],
    ids=["marked-sent", "deleted"],
)
async def test_recording_rows_published_relaxes_the_flush_of_that_transaction_only(
    pool: asyncpg.Pool, statement: str, tag: str, left: int
) -> None:
    """Both ways (``OUTBOX_RETENTION_SECONDS`` > 0: marked sent; 0: deleted)."""
    await write(pool, "x", [event("k", 1), event("k", 2)])
    async with pool.acquire() as conn:
        seqs = [r["seq"] for r in await conn.fetch("SELECT seq FROM outbox ORDER BY seq")]
        async with conn.transaction():
            assert await conn.fetchval("SHOW synchronous_commit") == "on"
            assert await conn.execute(statement, seqs[:1]) == tag
            assert await conn.fetchval("SHOW synchronous_commit") == "off"
        assert await conn.fetchval("SHOW synchronous_commit") == "on"
        assert await conn.fetchval("SELECT count(*) FROM outbox") == left
    assert await pending(pool) == 1


# both ways of recording a published row: kept (marked sent) for an hour, or deleted
RETENTIONS = pytest.mark.parametrize("retention", [3600.0, 0.0], ids=["kept", "deleted"])


async def stored_rows(pool: asyncpg.Pool) -> int:
    return int(await pool.fetchval("SELECT count(*) FROM outbox"))


@RETENTIONS
async def test_relay_wakes_on_notify_and_publishes_in_order(
    pool: asyncpg.Pool, bootstrap_servers: str, retention: float
) -> None:
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    # A one-minute idle timeout: delivery within seconds proves LISTEN/NOTIFY woke it.
    async with running_relay(pool, bootstrap_servers, idle_timeout=60, retention_seconds=retention):
        await asyncio.sleep(0.3)
        events = [event(f"k{i % 7}", i) for i in range(300)]  # COPY path
        await write(pool, topic, events)
        await write(pool, topic, [event("k1", 1000)])  # INSERT path
        seen = await read_all(bootstrap_servers, topic, 301, timeout=8)
    assert {e.event_id for e in events} <= {e.event_id for e in seen}
    assert len({e.event_id for e in seen}) == 301
    assert_ordered_per_key(seen)
    await eventually(lambda: all_sent(pool))
    assert await stored_rows(pool) == (301 if retention else 0)


@RETENTIONS
async def test_two_relays_share_the_lanes_without_reordering(
    pool: asyncpg.Pool, bootstrap_servers: str, retention: float
) -> None:
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    events = [event(f"k{i % 11}", i) for i in range(2000)]
    await write(pool, topic, events)
    async with (
        running_relay(pool, bootstrap_servers, batch_size=50, retention_seconds=retention),
        running_relay(pool, bootstrap_servers, batch_size=50, retention_seconds=retention),
    ):
        seen = await read_all(bootstrap_servers, topic, 2000)
        await eventually(lambda: all_sent(pool))
    assert len(seen) == 2000
    assert len({e.event_id for e in seen}) == 2000
    assert_ordered_per_key(seen)


class DiesMidBatch:
    """Publishes the first half of a batch, then fails (like a relay killed mid-batch)."""

    def __init__(self, inner: KafkaRecordPublisher) -> None:
        self.inner = inner
        self.failures = 1
        self.calls: list[str] = []

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        self.calls.append("publish")
        if self.failures:
            self.failures -= 1
            await self.inner.publish_batch(records[: len(records) // 2])
            raise ConnectionError("relay died mid-batch")
        await self.inner.publish_batch(records)

    async def refresh(self) -> None:
        self.calls.append("refresh")
        await self.inner.refresh()


@RETENTIONS
async def test_a_batch_interrupted_midway_is_published_again_whole(
    pool: asyncpg.Pool, bootstrap_servers: str, retention: float
) -> None:
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    events = [event("same-key", i) for i in range(40)]
    await write(pool, topic, events)
    producer = make_producer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        relay = OutboxRelay(
            pool=pool,
            publisher=DiesMidBatch(KafkaRecordPublisher(producer)),
            retention_seconds=retention,
        )
        with pytest.raises(ConnectionError):
            await relay.drain()
        assert await pending(pool) == 40  # nothing marked sent (or deleted)
        assert await relay.drain() == 40
        assert await stored_rows(pool) == (40 if retention else 0)
    finally:
        await producer.stop()
    seen = await read_all(bootstrap_servers, topic, 60)
    # At least once: the first 20 twice, then all 40, each pass in order.
    assert [e.payload["n"] for e in seen] == list(range(20)) + list(range(40))


async def test_after_a_failure_the_relay_refreshes_broker_metadata_before_publishing(
    pool: asyncpg.Pool, bootstrap_servers: str
) -> None:
    """A restarted broker may have lost topics the producer still believes in."""
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    await write(pool, topic, [event("k", i) for i in range(10)])
    producer = make_producer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    publisher = DiesMidBatch(KafkaRecordPublisher(producer))
    relay = OutboxRelay(pool=pool, publisher=publisher, max_backoff=0.1)
    task = asyncio.create_task(relay.run())
    try:
        await eventually(lambda: all_sent(pool))
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()
    assert publisher.calls == ["publish", "refresh", "publish"]


async def test_events_wait_while_the_broker_is_down_then_flow(pool: asyncpg.Pool) -> None:
    broker = EmbeddedBroker.start()
    port = broker.port
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=broker.bootstrap_servers, names=[topic])
    try:
        async with running_relay(pool, broker.bootstrap_servers):
            await write(pool, topic, [event(f"k{i % 3}", i) for i in range(10)])
            await read_all(broker.bootstrap_servers, topic, 10)
            broker.stop()
            await write(pool, topic, [event(f"k{i % 3}", i) for i in range(10, 50)])
            # Down for longer than the publish timeout (3 s), so the relay's attempt
            # fails and it refreshes metadata on the next. (The in-memory broker comes
            # back without the topic yet acknowledges writes to it from a producer
            # with stale metadata; Apache Kafka keeps its topics.)
            await asyncio.sleep(4)
            assert await pending(pool) == 40  # waiting, not lost
            broker = EmbeddedBroker.start(port)  # memory broker: comes back empty
            await ensure_topics(bootstrap_servers=broker.bootstrap_servers, names=[topic])
            seen = await read_all(broker.bootstrap_servers, topic, 40, timeout=30, distinct=True)
            await eventually(lambda: all_sent(pool))
    finally:
        broker.stop()
    # At least once: the failed attempt's records may still go out after the broker
    # returns, then the rolled-back rows go out again. A consumer deduplicating by
    # event id sees every event once, in order per key.
    first_seen: dict[object, Envelope] = {}
    for e in seen:
        first_seen.setdefault(e.event_id, e)
    assert sorted(e.payload["n"] for e in first_seen.values()) == list(range(10, 50))
    assert_ordered_per_key(list(first_seen.values()))


async def test_a_row_committed_late_behind_published_ones_is_still_published(
    pool: asyncpg.Pool, bootstrap_servers: str
) -> None:
    """The relay reads each lane past its last published row, then once from the start."""
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    producer = make_producer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    relay = OutboxRelay(pool=pool, publisher=KafkaRecordPublisher(producer))
    late = await pool.acquire()
    try:
        tx = late.transaction()
        await tx.start()
        await enqueue_many(late, topic=topic, envelopes=[event("k", 0)])  # smaller seq
        await write(pool, topic, [event("k", 1), event("k", 2)])
        assert await relay.drain() == 2
        await tx.commit()
        assert await relay.drain() == 1  # found although its seq is behind the cursor
        assert await relay.drain() == 0
    finally:
        await pool.release(late)
        await producer.stop()
    seen = await read_all(bootstrap_servers, topic, 3)
    assert sorted(e.payload["n"] for e in seen) == [0, 1, 2]


async def test_under_steady_traffic_a_late_row_waits_at_most_the_rescan_interval(
    pool: asyncpg.Pool, bootstrap_servers: str
) -> None:
    """Every pass publishing something never triggers the "nothing new" rescan, so the
    relay also reads the lanes from the start every ``rescan_seconds``."""
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    producer = make_producer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    relay = OutboxRelay(pool=pool, publisher=KafkaRecordPublisher(producer), rescan_seconds=0.5)
    late = await pool.acquire()
    try:
        tx = late.transaction()
        await tx.start()
        await enqueue_many(late, topic=topic, envelopes=[event("k", 0)])  # smaller seq
        await write(pool, topic, [event("k", 1)])
        assert await relay.drain() == 1
        await tx.commit()
        published = []
        for n in range(2, 12):  # steady traffic: something new for every pass
            await write(pool, topic, [event("k", n)])
            published.append(await relay.drain())
            await asyncio.sleep(0.1)
        assert published[:3] == [1, 1, 1]  # row 0 waits behind the cursor at first ...
        assert sum(published) == 11  # ... and is found within the rescan interval
    finally:
        await pool.release(late)
        await producer.stop()
    seen = await read_all(bootstrap_servers, topic, 12)
    assert sorted(e.payload["n"] for e in seen) == list(range(12))


@pytest.mark.parametrize("count", [3, 100], ids=["insert", "copy"])
async def test_a_null_value_is_published_as_a_tombstone_in_order_with_its_key(
    pool: asyncpg.Pool, bootstrap_servers: str, count: int
) -> None:
    """A row with a null value (a compacted topic's tombstone) goes out as a Kafka record
    with a null value, with its headers, after the key's earlier values."""
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    rows = [
        EncodedEvent(uuid7(), f"k{i}", "eligibility.state", None if i % 2 else b'{"n":1}')
        for i in range(count)
    ]
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_encoded(conn, topic=topic, events=rows, count=count)
    async with running_relay(pool, bootstrap_servers):
        consumer = AIOKafkaConsumer(
            topic, bootstrap_servers=bootstrap_servers, auto_offset_reset="earliest"
        )
        await consumer.start()
        got: dict[str, bytes | None] = {}
        try:
            async with asyncio.timeout(20):
                while len(got) < count:
                    for records in (await consumer.getmany(timeout_ms=200)).values():
                        for r in records:
                            assert dict(r.headers)["event-type"] == b"eligibility.state"
                            got[r.key.decode()] = r.value
        finally:
            await consumer.stop()
    assert got == {row.key: row.value for row in rows}
    assert sum(v is None for v in got.values()) == count // 2
