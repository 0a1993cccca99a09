"""Outbox relay throughput: N committed events -> all on the topic.

Starts an embedded PostgreSQL and broker, writes N events (as a service would, with
``enqueue_many`` in one transaction), then runs one relay and times until the last
event is on the topic (end offsets). Prints events/s and the median of the runs.

    python bench/outbox_relay.py --events 100000 --runs 3 [--concurrency 4]

``--concurrency`` is ``OUTBOX_CONCURRENCY`` (lanes published at once; default 1, the
services' default on the embedded broker).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.db.pool import connect, create_pool
from reelpolicy_common.kafka import KafkaRecordPublisher, ensure_topics, make_producer
from reelpolicy_common.outbox import OutboxRelay, enqueue_many
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
)


async def count_until(bootstrap: str, topic: str, expected: int) -> float:
    """Consume ``topic`` until ``expected`` records arrived; the time of the last one.

    (Tansu's ListOffsets answers are not record offsets, so count by consuming.)
    """
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    seen = 0
    try:
        while seen < expected:
            for records in (await consumer.getmany(timeout_ms=200, max_records=10_000)).values():
                seen += len(records)
        return time.perf_counter()
    finally:
        await consumer.stop()


async def one_run(
    admin_uri: str, bootstrap: str, events: int, run: int, batch: int, concurrency: int
) -> float:
    name = f"bench_relay_{run}"
    await ensure_database(admin_uri, name, fresh=True)
    dsn = database_uri(admin_uri, name)
    conn = await connect(dsn)
    await apply_migrations(conn, common_migrations())
    topic = f"bench.relay.{run}.{int(time.time())}"
    await ensure_topics(bootstrap_servers=bootstrap, names=[topic])
    envelopes = [
        Envelope(
            type=EventType.eligibility_changed,
            producer="bench",
            key=f"e{i % 5000}",
            payload={"subject_id": f"p{i}", "status": "eligible", "amount_cny": i},
        )
        for i in range(events)
    ]
    async with conn.transaction():
        await enqueue_many(conn, topic=topic, envelopes=envelopes)
    await conn.close()
    pool = await create_pool(dsn, max_size=10)
    producer = make_producer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    relay = OutboxRelay(
        pool=pool,
        publisher=KafkaRecordPublisher(producer),
        batch_size=batch,
        concurrency=concurrency,
    )
    counter = asyncio.create_task(count_until(bootstrap, topic, events))
    await asyncio.sleep(1)  # let the counting consumer connect
    started = time.perf_counter()
    task = asyncio.create_task(relay.run())
    elapsed = await counter - started
    relay.stop()
    await task
    await producer.stop()
    await pool.close()
    return elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres.start(Path(tmp) / "pg")
        broker = EmbeddedBroker.start()
        try:
            times = []
            for run in range(args.runs):
                elapsed = await one_run(
                    pg.uri(),
                    broker.bootstrap_servers,
                    args.events,
                    run,
                    args.batch_size,
                    args.concurrency,
                )
                times.append(elapsed)
                print(
                    f"run {run}: {args.events} events in {elapsed:.2f} s = {args.events / elapsed:,.0f}/s"
                )
            median = statistics.median(times)
            print(f"median: {median:.2f} s = {args.events / median:,.0f} events/s")
        finally:
            broker.stop()
            pg.stop()


if __name__ == "__main__":
    asyncio.run(main())
