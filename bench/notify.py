"""Benchmark: eligibility events -> signed webhooks to a local receiver.

    .venv/bin/python bench/notify.py [--events 50000] [--companies 5000] [--rate 1200]

Drives notify's event handler directly (``handle_event``: idempotency record,
eligibility projection, subscription lookup, delivery insert, all in one transaction
per event, ``--partitions`` of them concurrently like the consumer's partitions) on an
embedded PostgreSQL, paced at ``--rate`` events/s; the real delivery worker (LISTEN/
NOTIFY wake-ups, SKIP LOCKED leases, httpx, Standard Webhooks signatures, batched
attempt records) posts to a raw asyncio HTTP receiver in another process on
127.0.0.1. The broker is not involved. Latency is event ``occurred_at`` -> the receiver
has read the request; throughput is deliveries / (last receipt - first event).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from reelpolicy_common.db.migrations import apply_migrations, common_migrations, discover
from reelpolicy_common.db.pool import connect, create_pool
from reelpolicy_common.events import Envelope, EventType
from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, ensure_database
from reelpolicy_notify.adapters.email_client import SmtpEmailSender
from reelpolicy_notify.adapters.postgres import NotifyUnitOfWork
from reelpolicy_notify.adapters.queue import PostgresDeliveryQueue
from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.adapters.webhook_client import WebhookHttpSender
from reelpolicy_notify.domain.signing import new_secret
from reelpolicy_notify.entrypoints.worker import DeliveryWorker
from reelpolicy_notify.handlers.delivering import DeliveryPolicy
from reelpolicy_notify.handlers.events import handle_event

MASTER_KEY = "bench-secret-key-0123456789abcdef"


# --- receiver (its own process) ----------------------------------------------------------


def receiver_main(port_out: Any, done_out: Any, expected: int) -> None:
    latencies: list[float] = []
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
                stamp = json.loads(body)["timestamp"]
                latencies.append(got - datetime.fromisoformat(stamp).timestamp())
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
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


# --- notify side -------------------------------------------------------------------------


async def seed(dsn: str, *, companies: int, url: str, box: SecretBox) -> list[str]:
    conn = await connect(dsn)
    try:
        await apply_migrations(
            conn, common_migrations() + discover("reelpolicy_notify.migrations", namespace="notify")
        )
        ids = [f"ent-{i:05d}" for i in range(companies)]
        sealed = box.seal(new_secret())
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


def event(enterprise_id: str, n: int) -> Envelope:
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
        "cause": "bench",
    }
    return Envelope(
        type=EventType.eligibility_changed, producer="bench", key=enterprise_id, payload=payload
    )


async def feed(
    pool: Any, box: SecretBox, ids: list[str], *, events: int, rate: float, partitions: int
) -> float:
    """Handle ``events`` paced at ``rate``/s over ``partitions`` lanes; returns start time."""
    queues: list[asyncio.Queue[Envelope | None]] = [asyncio.Queue() for _ in range(partitions)]

    def uow() -> NotifyUnitOfWork:
        return NotifyUnitOfWork(pool, box)

    async def lane(q: asyncio.Queue[Envelope | None]) -> None:
        while (envelope := await q.get()) is not None:
            await handle_event(uow=uow, envelope=envelope, traceparent=None)

    lanes = [asyncio.create_task(lane(q)) for q in queues]
    start = time.time()
    for n in range(events):
        due = start + n / rate
        if (wait := due - time.time()) > 0:
            await asyncio.sleep(wait)
        enterprise_id = ids[n % len(ids)]  # occurred_at: now, when it is offered
        queues[hash(enterprise_id) % partitions].put_nowait(event(enterprise_id, n))
    for q in queues:
        q.put_nowait(None)
    await asyncio.gather(*lanes)
    return start


async def run(args: argparse.Namespace, dsn: str, port: int) -> float:
    box = SecretBox(MASTER_KEY)
    ids = await seed(dsn, companies=args.companies, url=f"http://127.0.0.1:{port}/hook", box=box)
    print(f"seeded {len(ids)} subscriptions", file=sys.stderr)
    pool = await create_pool(dsn, min_size=4, max_size=args.partitions + 6)
    webhooks = WebhookHttpSender(
        timeout=15,
        body_limit=1024,
        allow_private=True,
        allowed_hosts=frozenset(),
    )
    worker = DeliveryWorker(
        pool=pool,
        queue=PostgresDeliveryQueue(pool, box),
        uow=lambda: NotifyUnitOfWork(pool, box),
        webhooks=webhooks,
        emails=SmtpEmailSender(host="localhost", port=1025, sender="b@x", timeout=5),
        policy=DeliveryPolicy((0, 5, 300), 0.1, 5 * 86400),
        concurrency=args.concurrency,
        batch=args.batch,
        lease_seconds=60,
        max_idle_seconds=1.0,
    )
    worker_task = asyncio.create_task(worker.run())
    try:
        start = await feed(
            pool, box, ids, events=args.events, rate=args.rate, partitions=args.partitions
        )
        return start
    finally:
        await asyncio.sleep(0)
        globals()["_cleanup"] = (worker_task, webhooks, pool)


async def delivery_report(dsn: str) -> dict[str, Any]:
    conn = await connect(dsn)
    try:
        states = await conn.fetch("SELECT status, count(*) FROM deliveries GROUP BY status")
        errors = await conn.fetch(
            "SELECT error, count(*) FROM delivery_attempts WHERE error IS NOT NULL"
            " GROUP BY error ORDER BY 2 DESC LIMIT 3"
        )
    finally:
        await conn.close()
    return {"states": dict(list(r) for r in states), "errors": [tuple(r) for r in errors]}


async def cleanup() -> None:
    worker_task, webhooks, pool = globals()["_cleanup"]
    worker_task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await worker_task
    await webhooks.aclose()
    await pool.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--companies", type=int, default=5_000)
    parser.add_argument("--rate", type=float, default=1200.0, help="events offered per second")
    parser.add_argument("--partitions", type=int, default=12, help="concurrent handler lanes")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--batch", type=int, default=200)
    args = parser.parse_args()

    ctx = mp.get_context("spawn")
    port_in, port_out = ctx.Pipe(duplex=False)
    done_in, done_out = ctx.Pipe(duplex=False)
    receiver = ctx.Process(
        target=receiver_main, args=(port_out, done_out, args.events), daemon=True
    )
    receiver.start()
    port = port_in.recv()
    with tempfile.TemporaryDirectory() as tmp:
        server = EmbeddedPostgres.start(Path(tmp) / "pg")
        try:
            print("postgres started", file=sys.stderr)
            name = f"bench_{uuid.uuid4().hex[:8]}"
            asyncio.run(ensure_database(server.uri(), name))
            dsn = database_uri(server.uri(), name)

            async def whole() -> tuple[float, list[float], float]:
                start = await run(args, dsn, port)
                print(f"fed {args.events} events in {time.time() - start:.1f}s", file=sys.stderr)
                loop = asyncio.get_running_loop()
                while not await loop.run_in_executor(None, done_in.poll, 10.0):
                    print("waiting:", await delivery_report(dsn), file=sys.stderr)
                latencies, last = done_in.recv()
                await cleanup()
                return start, latencies, last

            start, latencies, last = asyncio.run(whole())
        finally:
            server.stop()
    receiver.join(timeout=5)
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
