"""Benchmark: eligibility events on Kafka -> the notify service -> signed webhooks.

    .venv/bin/python bench/notify.py [--events 50000] [--companies 5000] [--rate 1000]

Starts an embedded PostgreSQL and broker, seeds ``--companies`` webhook
subscriptions, and runs the real notify service (``reelpolicy-notify serve``, its
own process: consumer, delivery worker, HTTP API) against them. A producer in this
process publishes eligibility events to ``reelpolicy.eligibility.v1`` paced at
``--rate``/s; a raw asyncio HTTP receiver (a third process) reads the signed webhooks.
Latency is the event's ``occurred_at`` (when it was due by the schedule) -> the
receiver has read the request; throughput is deliveries / (last receipt - first offer). First
``--warmup`` events (not counted) wait for the consumer group to form.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reelpolicy_common.db.pool import connect
from reelpolicy_common.kafka import KafkaRecordPublisher, ensure_topics, make_producer
from reelpolicy_common.outbox import OutboxRecord
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
)
from reelpolicy_devstack.services import ServiceGroup, run
from reelpolicy_notify.adapters.secret_box import SecretBox, parse_key_ring
from reelpolicy_notify.domain.signing import new_secret
from support import SECRET, process_cpu_seconds

SEALING_KEYS = "bench:AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"


# --- receiver (its own process) ----------------------------------------------------------


def receiver_main(port_out: Any, done_out: Any, warm_out: Any, warmup: int, expected: int) -> None:
    latencies: list[float] = []
    warm = 0
    finished = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readline():
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                got = time.time()
                message = json.loads(body)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                if message["data"]["cause"] == "warmup":
                    nonlocal warm
                    warm += 1
                    if warm == warmup:
                        warm_out.send(True)
                    continue
                stamp = message["timestamp"]
                latencies.append(got - datetime.fromisoformat(stamp).timestamp())
                if len(latencies) >= expected:
                    finished.set()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", 0, backlog=1024)
        port_out.send(server.sockets[0].getsockname()[1])
        await finished.wait()
        done_out.send((latencies, time.time()))

    asyncio.run(main())


# --- the platform side --------------------------------------------------------------


async def seed(dsn: str, *, companies: int, url: str) -> list[str]:
    conn = await connect(dsn)
    try:
        ids = [f"ent-{i:05d}" for i in range(companies)]
        sealed = SecretBox(parse_key_ring(SEALING_KEYS)).seal(new_secret())
        await conn.copy_records_to_table(
            "subscriptions",
            columns=["id", "enterprise_id", "channel", "url", "events", "secret_sealed"],
            records=[
                (uuid.uuid4(), e, "webhook", url, ["eligibility.changed"], sealed) for e in ids
            ],
        )
    finally:
        await conn.close()
    return ids


def event(enterprise_id: str, n: int, cause: str) -> Envelope:
    payload = {
        "subject_type": "enterprise",
        "subject_id": enterprise_id,
        "enterprise_id": enterprise_id,
        "policy_id": f"p-{n % 29}",
        "policy_version": 1,
        "previous_status": "ineligible",
        "status": "eligible",
        "previous_amount_cny": None,
        "amount_cny": 100_000 + n,
        "cause": cause,
    }
    return Envelope(
        type=EventType.eligibility_changed, producer="bench", key=enterprise_id, payload=payload
    )


STAMP = b"1970-01-01T00:00:00.123456Z"  # replaced by the time the event is due


def encoded(ids: list[str], *, events: int, cause: str) -> list[tuple[str, bytes]]:
    """(key, value) of every event, encoded before the run with a placeholder time."""
    placeholder = datetime.fromisoformat(STAMP.decode())
    out = []
    for n in range(events):
        enterprise_id = ids[n % len(ids)]
        envelope = event(enterprise_id, n, cause).model_copy(update={"occurred_at": placeholder})
        value = envelope.to_bytes()
        assert value.count(STAMP) == 1, value
        out.append((enterprise_id, value))
    return out


async def publish(bootstrap: str, records: list[tuple[str, bytes]], *, rate: float) -> float:
    """Offer ``records`` at ``rate``/s (``occurred_at`` = when due); the start time.

    Every 5 ms the records then due are stamped with their due time and published as the
    rules service's outbox relay publishes (``KafkaRecordPublisher``: one record batch
    per partition). The load generator stays light (no envelope built in the loop, no
    timer per record), so the machine's two cores go to the platform, not the benchmark.
    """
    producer = make_producer(bootstrap_servers=bootstrap, enable_idempotence=False)
    await producer.start()
    publisher = KafkaRecordPublisher(producer)
    try:
        start = time.time()

        def due_at(n: int) -> bytes:
            """When record ``n`` is due: a late load generator counts against the latency."""
            when = datetime.fromtimestamp(start + n / rate, UTC)
            return when.strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()

        sent = 0
        while sent < len(records):
            due = min(int((time.time() - start) * rate) + 1, len(records))
            await publisher.publish_batch(
                [
                    OutboxRecord(n, topics.ELIGIBILITY, key, value.replace(STAMP, due_at(n)))
                    for n, (key, value) in enumerate(records[sent:due], start=sent)
                ]
            )
            sent = due
            await asyncio.sleep(0.005)
        return start
    finally:
        await producer.stop()


async def stages(dsn: str) -> str:
    """Where the time went: event -> delivery row (consumer) -> attempt done (worker)."""
    conn = await connect(dsn)
    try:
        row = await conn.fetchrow(
            """SELECT percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM created_at - occurred_at)) AS consumed,
               percentile_cont(ARRAY[0.5, 0.99]) WITHIN GROUP (ORDER BY
                   extract(epoch FROM finished_at - created_at)) AS delivered
               FROM deliveries WHERE body -> 'data' ->> 'cause' = 'bench'"""
        )
    finally:
        await conn.close()
    assert row is not None
    consumed, delivered = ([round(x * 1000) for x in row[k]] for k in ("consumed", "delivered"))
    return (
        f"event -> delivery row (consumer) p50/p99 {consumed[0]}/{consumed[1]} ms;"
        f" row -> delivered (worker) p50/p99 {delivered[0]}/{delivered[1]} ms"
    )


def start_notify(pg: EmbeddedPostgres, broker: EmbeddedBroker, logs: Path) -> ServiceGroup:
    name = f"bench_notify_{uuid.uuid4().hex[:8]}"
    asyncio.run(ensure_database(pg.uri(), name))
    env = {
        "DATABASE_URL": database_uri(pg.uri(), name),
        "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
        "KAFKA_CONSUMER_GROUP": name,
        "REELPOLICY_SECRET_KEY": SECRET,
        "NOTIFY_SEALING_KEYS": SEALING_KEYS,
        "NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
        "LOG_LEVEL": "WARNING",
    }
    run("notify", "migrate", env=env)
    group = ServiceGroup()
    group.start("notify", port=free_port(), env=env, log_dir=logs)
    group.wait_healthy(timeout=60)
    os.environ["BENCH_NOTIFY_DSN"] = env["DATABASE_URL"]
    return group


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--companies", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=1000.0, help="events offered per second")
    parser.add_argument("--warmup", type=int, default=200)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    port_in, port_out = ctx.Pipe(duplex=False)
    done_in, done_out = ctx.Pipe(duplex=False)
    warm_in, warm_out = ctx.Pipe(duplex=False)
    receiver = ctx.Process(
        target=receiver_main,
        args=(port_out, done_out, warm_out, args.warmup, args.events),
        daemon=True,
    )
    receiver.start()
    port = port_in.recv()
    with tempfile.TemporaryDirectory() as tmp:
        pg = EmbeddedPostgres.start(Path(tmp) / "pg")
        broker = EmbeddedBroker.start()
        group = None
        try:
            asyncio.run(ensure_topics(bootstrap_servers=broker.bootstrap_servers))
            group = start_notify(pg, broker, Path(tmp) / "logs")
            dsn = os.environ["BENCH_NOTIFY_DSN"]
            ids = asyncio.run(seed(dsn, companies=args.companies, url=f"http://127.0.0.1:{port}/h"))
            print(f"notify up; {len(ids)} subscriptions", file=sys.stderr)
            warmup = encoded(ids, events=args.warmup, cause="warmup")
            asyncio.run(publish(broker.bootstrap_servers, warmup, rate=500))
            if not warm_in.poll(120):
                raise TimeoutError("warm-up deliveries did not arrive")
            print(f"warm-up: {args.warmup} delivered", file=sys.stderr)
            records = encoded(ids, events=args.events, cause="bench")
            cpu_before = process_cpu_seconds([group.processes[0].process.pid])
            start = asyncio.run(publish(broker.bootstrap_servers, records, rate=args.rate))
            print(f"offered {args.events} events in {time.time() - start:.1f}s", file=sys.stderr)
            if not done_in.poll(600):
                raise TimeoutError("deliveries did not all arrive within 600 s")
            latencies, last = done_in.recv()
            busy = process_cpu_seconds([group.processes[0].process.pid]) - cpu_before
            print(f"notify process CPU: {busy:.1f} s in {last - start:.1f} s", file=sys.stderr)
            print(asyncio.run(stages(dsn)))
        finally:
            if group is not None:
                group.stop()
            broker.stop()
            pg.stop()
    receiver.join(timeout=5)
    window = max(len(latencies) // 10, 1)
    windows = [sorted(latencies[i : i + window]) for i in range(0, len(latencies), window)]
    print(
        "p99 per tenth of the run (ms):",
        " ".join(f"{w[max(int(len(w) * 0.99) - 1, 0)] * 1000:.0f}" for w in windows),
    )
    latencies.sort()
    elapsed = last - start
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    print(f"events {args.events} companies {args.companies} offered {args.rate:.0f}/s")
    print(f"deliveries {len(latencies)} in {elapsed:.1f}s = {len(latencies) / elapsed:,.0f}/s")
    print(
        f"event->delivery latency p50 {p50:.1f} ms  p99 {p99:.1f} ms  max {latencies[-1] * 1000:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
