"""The outbox never stalls on one row: events are bounded when written, a row the
broker refuses for good is quarantined, one failing lane group does not stop the
others. On the real embedded PostgreSQL and broker."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence

import asyncpg
import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from fastapi import FastAPI
from prometheus_client import REGISTRY

from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.http.errors import install_error_handlers
from reelpolicy_common.kafka import KafkaRecordPublisher, ensure_topics, make_producer
from reelpolicy_common.metrics import PrometheusOutboxMetrics
from reelpolicy_common.outbox import OutboxRecord, OutboxRelay, enqueue_many
from reelpolicy_common.outbox.quarantine import list_quarantined, retry_quarantined
from reelpolicy_common.outbox.store import MAX_EVENT_BYTES, EventTooLargeError, lane_of
from reelpolicy_contracts.events import Envelope, EventType
from service_harness import unique_topic

pytestmark = pytest.mark.servers


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_database)
    await apply_migrations(conn, common_migrations())
    await conn.close()
    pool = await create_pool(fresh_database, max_size=8)
    yield pool
    await pool.close()


def event(key: str, n: int, *, pad: int = 0) -> Envelope:
    payload: dict[str, object] = {"n": n}
    if pad:
        payload["pad"] = "x" * pad
    return Envelope(type=EventType.enterprise_upserted, producer="test", key=key, payload=payload)


async def write(pool: asyncpg.Pool, topic: str, events: Sequence[Envelope]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await enqueue_many(conn, topic=topic, envelopes=events)


async def write_unchecked(pool: asyncpg.Pool, topic: str, e: Envelope) -> None:
    """Straight into the table, past the write bound (as rows written before it were)."""
    await pool.execute(
        "INSERT INTO outbox (event_id, topic, key, lane, event_type, value)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        e.event_id,
        topic,
        e.key,
        lane_of(e.key),
        e.type.value,
        e.to_bytes(),
    )


async def read_all(
    bootstrap: str, topic: str, expected: int, timeout: float = 15
) -> list[Envelope]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    seen: list[Envelope] = []
    try:
        async with asyncio.timeout(timeout):
            while len({e.event_id for e in seen}) < expected:
                batch = await consumer.getmany(timeout_ms=200)
                for records in batch.values():
                    seen.extend(Envelope.model_validate_json(r.value) for r in records)
    finally:
        await consumer.stop()
    return seen


def first_of_each(seen: list[Envelope]) -> list[Envelope]:
    """What a consumer deduplicating by event id applies, in order."""
    firsts: dict[object, Envelope] = {}
    for e in seen:
        firsts.setdefault(e.event_id, e)
    return list(firsts.values())


def numbers_per_key(seen: list[Envelope]) -> dict[str, list[int]]:
    per_key: dict[str, list[int]] = defaultdict(list)
    for e in first_of_each(seen):
        per_key[e.key].append(e.payload["n"])
    return dict(per_key)


@contextlib.asynccontextmanager
async def running_relay(
    pool: asyncpg.Pool, bootstrap: str, *, batch_size: int = 100
) -> AsyncIterator[OutboxRelay]:
    producer = make_producer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    relay = OutboxRelay(
        pool=pool,
        publisher=KafkaRecordPublisher(producer, timeout=3),
        batch_size=batch_size,
        max_backoff=0.5,
        metrics=PrometheusOutboxMetrics(),
    )
    task = asyncio.create_task(relay.run())
    try:
        yield relay
    finally:
        relay.stop()
        await asyncio.wait_for(task, 10)
        await producer.stop()


def quarantined_total() -> float:
    return REGISTRY.get_sample_value("reelpolicy_outbox_quarantined_total") or 0.0


async def test_a_row_the_broker_refuses_is_quarantined_and_every_other_row_flows(
    pool: asyncpg.Pool, bootstrap_servers: str
) -> None:
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    before = quarantined_total()
    await write(pool, topic, [event(f"k{i % 3}", i) for i in range(10)])
    too_large = event("k0", 10, pad=1_100_000)  # over the producer's 1 MiB batch
    await write_unchecked(pool, topic, too_large)
    bad_topic = event("k1", 11)
    await write_unchecked(pool, "no such topic!", bad_topic)  # an illegal topic name
    await write(pool, topic, [event(f"k{i % 3}", i) for i in range(12, 30)])
    async with running_relay(pool, bootstrap_servers, batch_size=100):
        seen = await read_all(bootstrap_servers, topic, 28)
        async with pool.acquire() as conn:
            quarantined = await list_quarantined(conn)
    published = numbers_per_key(seen)
    assert sorted(n for ns in published.values() for n in ns) == [
        n for n in range(30) if n not in (10, 11)
    ]
    for key, ns in published.items():
        assert ns == sorted(ns), f"{key} out of order: {ns}"  # later rows of k0 still go out
    assert too_large.event_id not in {e.event_id for e in seen}
    assert [(q.event_id, q.key, q.topic) for q in quarantined] == [
        (too_large.event_id, "k0", topic),
        (bad_topic.event_id, "k1", "no such topic!"),
    ]
    assert "MessageSizeTooLargeError" in quarantined[0].error
    assert quarantined[0].size > 1_100_000
    assert "illegal topic name" in quarantined[1].error
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL") == 0
    assert quarantined_total() - before == 2


async def test_a_retried_row_goes_back_to_the_outbox_with_its_event_id(
    pool: asyncpg.Pool, bootstrap_servers: str
) -> None:
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    stray = event("k", 1)
    await write_unchecked(pool, f"{topic}-later", stray)  # its topic does not exist yet
    async with pool.acquire() as conn:
        seq = await conn.fetchval("SELECT seq FROM outbox")
        await conn.execute(
            "WITH m AS (DELETE FROM outbox RETURNING *) INSERT INTO outbox_quarantine"
            " (seq, event_id, topic, key, lane, event_type, value, headers, created_at, error)"
            " SELECT seq, event_id, topic, key, lane, event_type, value, headers, created_at,"
            " 'UnknownTopicOrPartitionError' FROM m"
        )
        assert await retry_quarantined(conn, seqs=[seq + 1000]) == []
        assert await retry_quarantined(conn, seqs=[seq]) == [seq]
        assert await list_quarantined(conn) == []
        row = await conn.fetchrow("SELECT seq, event_id, sent_at FROM outbox")
    assert row is not None
    assert (row["event_id"], row["sent_at"]) == (stray.event_id, None)
    assert row["seq"] > seq  # a new pending row, at the end of its lane
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[f"{topic}-later"])
    async with running_relay(pool, bootstrap_servers):
        seen = await read_all(bootstrap_servers, f"{topic}-later", 1)
    assert [e.event_id for e in seen] == [stray.event_id]


class OneGroupFails:
    """Fails every batch holding ``bad_key``; the others are acknowledged a little later,
    so they are still in flight when that failure happens."""

    def __init__(self, inner: KafkaRecordPublisher, bad_key: str) -> None:
        self.inner = inner
        self.bad_key = bad_key

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None:
        if any(r.key == self.bad_key for r in records):
            raise ConnectionError("this group's broker connection dropped")
        await asyncio.sleep(0.3)
        await self.inner.publish_batch(records)

    async def refresh(self) -> None:
        await self.inner.refresh()


async def test_one_failing_lane_group_does_not_stop_the_others(
    pool: asyncpg.Pool, bootstrap_servers: str
) -> None:
    topic = unique_topic()
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topic])
    keys = [f"key-{i}" for i in range(40)]
    await write(pool, topic, [event(k, n) for n in range(3) for k in keys])
    concurrency = 4
    bad_group = lane_of("key-0") % concurrency  # groups take every 4th lane
    failing = {k for k in keys if lane_of(k) % concurrency == bad_group}
    healthy = set(keys) - failing
    assert failing
    assert healthy
    producer = make_producer(bootstrap_servers=bootstrap_servers, enable_idempotence=False)
    await producer.start()
    try:
        relay = OutboxRelay(
            pool=pool,
            publisher=OneGroupFails(KafkaRecordPublisher(producer), "key-0"),
            concurrency=concurrency,
        )
        with pytest.raises(ConnectionError):  # the failure is still reported
            await relay.drain()
    finally:
        await producer.stop()
    left = await pool.fetch("SELECT DISTINCT key FROM outbox WHERE sent_at IS NULL")
    assert {r["key"] for r in left} == failing
    seen = await read_all(bootstrap_servers, topic, 3 * len(healthy))
    assert {e.key for e in seen} == healthy


async def test_an_event_over_the_bound_is_refused_when_written(pool: asyncpg.Pool) -> None:
    big = event("k", 1, pad=MAX_EVENT_BYTES)
    for batch in ([big], [event("k", n) for n in range(70)] + [big]):  # INSERT, COPY
        with pytest.raises(EventTooLargeError) as refused:
            await write(pool, "t", batch)
        assert refused.value.field == "pad"
        assert refused.value.size > MAX_EVENT_BYTES
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 0
    await write(pool, "t", [event("k", 1, pad=MAX_EVENT_BYTES - 1000)])  # just under


async def test_the_api_answers_413_naming_the_field_and_rolls_the_change_back(
    pool: asyncpg.Pool,
) -> None:
    await pool.execute("CREATE TABLE notes (body text)")
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/notes")
    async def add_note(body: dict[str, str]) -> dict[str, str]:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO notes VALUES ($1)", body["text"])
            note = Envelope(
                type=EventType.enterprise_upserted,
                producer="test",
                key="note",
                payload={"note": {"id": 1, "text": body["text"]}},
            )
            await enqueue_many(conn, topic="t", envelopes=[note])
        return {}

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        answer = await client.post("/notes", json={"text": "x" * (MAX_EVENT_BYTES + 1)})
        assert (await client.post("/notes", json={"text": "short"})).status_code == 200
    assert answer.status_code == 413
    assert answer.json()["errors"][0]["field"] == "note.text"
    assert await pool.fetchval("SELECT count(*) FROM notes") == 1
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1
