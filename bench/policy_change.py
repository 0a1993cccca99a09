"""Benchmark: a new version of a catalog policy over 1,000,000 productions in the projection.

    .venv/bin/python bench/policy_change.py [--productions 1000000] [--runs 3]

Starts an embedded PostgreSQL and broker, loads the synthetic projection straight into
the rules database with COPY, starts ``reelpolicy-rules serve`` (it loads the columnar
cache on start), then publishes versions of ``zz-yellow-river`` whose amount changes
for every matching production (~100,000). The policy event is produced by this script
(no ingest): time runs from just before the event is produced to the arrival of the
last ``eligibility.changed`` event it caused. Reports every run and the median.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from typing import Any

import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelpolicy_common import topics
from reelpolicy_common.events import Envelope, EventType
from rules_bench_support import (
    ROOT,
    load_projection,
    prepare,
    running,
    servers,
    start_service,
    synthetic,
    wait_healthy,
)


def catalog_doc(amount: int) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "catalog/zz-yellow-river.yaml").read_text(encoding="utf-8"))
    doc: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    doc["benefits"][0]["max_amount_cny"] = amount
    return doc


async def one_run(bootstrap: str, version: int, amount: int, quiet: float) -> tuple[float, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=10)
    await consumer.start()
    tps = [
        TopicPartition(topics.ELIGIBILITY, i) for i in range(topics.partitions(topics.ELIGIBILITY))
    ]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    doc = {**catalog_doc(amount), "version": version}
    env = Envelope(type=EventType.policy_published, producer="bench", key=doc["id"],
                   payload={"policy_id": doc["id"], "version": version, "document": doc})  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    cause = str(env.event_id)
    t0 = time.perf_counter()
    await producer.send_and_wait(topics.POLICY, env.to_bytes(), key=env.key.encode())
    await producer.stop()
    last, count, impact = t0, 0, False
    idle_since = time.perf_counter()
    try:
        while not impact or time.perf_counter() - idle_since < quiet:
            got = False
            for records in (await consumer.getmany(timeout_ms=100, max_records=10000)).values():
                for r in records:
                    if cause.encode() not in r.value and doc["id"].encode() not in r.value:
                        continue
                    e = Envelope.model_validate_json(r.value)
                    if e.type is EventType.policy_impact and e.payload["policy_version"] == version:
                        impact = got = True
                    elif e.payload.get("cause") == cause:
                        count += 1
                        last = time.perf_counter()
                        got = True
            if got:
                idle_since = time.perf_counter()
            if time.perf_counter() - t0 > 300:
                raise TimeoutError("no impact event")
    finally:
        await consumer.stop()
    return last - t0, count


async def main_async(a: argparse.Namespace) -> int:
    with servers() as (pg, broker):
        dsn = await prepare(pg, broker)
        t = time.perf_counter()
        ents, prods = synthetic(a.productions)
        await load_projection(dsn, ents, prods)
        print(f"loaded {prods.height:,} productions / {ents.height:,} enterprises with COPY "
              f"in {time.perf_counter() - t:.1f}s")  # fmt: skip
        proc, port = start_service(dsn, broker.bootstrap_servers)
        async with running(proc):
            print(f"service healthy (cache loaded) after {await wait_healthy(port):.1f}s")
            await asyncio.sleep(8)  # consumer group join on the embedded broker
            secs, n = await one_run(broker.bootstrap_servers, 1, 300_000, a.quiet)
            print(f"v1 (first publication): {n:,} eligibility events, last after {secs:.2f}s")
            times = []
            for i in range(a.runs):
                version = i + 2
                amount = 350_000 if i % 2 == 0 else 300_000
                secs, n = await one_run(broker.bootstrap_servers, version, amount, a.quiet)
                times.append(secs)
                print(f"v{version}: {n:,} eligibility events, last after {secs:.2f}s")
            print(f"median policy change -> last eligibility event: {statistics.median(times):.2f}s "
                  f"(target < 5s)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--productions", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds without events = done")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
