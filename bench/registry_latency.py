"""Benchmark: registry update -> eligibility event latency under a steady rate.

    .venv/bin/python bench/registry_latency.py [--rate 200] [--seconds 60] [--productions 20000]
                                               [--direct] [--stages]

Starts ``reelpolicy-registry serve`` and ``reelpolicy-rules serve`` (their own
databases, one broker), publishes every policy of the catalog, imports ``--productions``
generated productions plus ``2 × --rate`` Zhengzhou productions through
``POST /v1/import`` and waits until the rules projection holds them all. Then it sends
``PATCH /v1/productions/{id}`` at ``--rate`` per second (pre-encoded requests on 16
keep-alive connections, following one schedule), each toggling the Yellow River theme of one Zhengzhou production, so
each one changes its ``zz-yellow-river`` result. Latency runs from the registry's HTTP
response to the arrival of the eligibility event on the topic, at a consumer fetching
as the services do (``MEASURING_FETCH_WAIT_MS``); the PATCH latency, from when each
request was due, is printed too. Reports p50 / p99. With ``--stages`` it also prints where
the time goes (from the records' timestamps), watching the registry topic with a second
consumer, which costs the broker and this process CPU that the services share.

``--direct`` leaves the registry out: the projection is loaded with COPY and the
``production.upserted`` snapshots are produced to the registry topic by this script;
latency then runs from that produce.
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
from aiokafka import AIOKafkaProducer

from policy_change import (
    MEASURING_FETCH_WAIT_MS,
    ROOT,
    eligibility_consumer,
    load_projection,
    prepare,
    running,
    servers,
    start_service,
    synthetic,
    wait_healthy,
)
from reelpolicy_common import topics
from reelpolicy_common.events import Envelope, EventType


def catalog_events() -> list[Envelope]:
    out = []
    for path in sorted((ROOT / "catalog").glob("*.yaml")):
        doc: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        payload = {"policy_id": doc["id"], "version": 1, "document": {**doc, "version": 1}}
        out.append(Envelope(type=EventType.policy_published, producer="bench", key=doc["id"],
                            payload=payload))  # fmt: skip
    return out


async def publish_catalog(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for env in catalog_events():
            await producer.send_and_wait(topics.POLICY, env.to_bytes(), key=env.key.encode())
    finally:
        await producer.stop()


def update(pid: str, eid: str, version: int, yellow: bool) -> Envelope:
    attributes = {"enterprise_id": eid, "title": "P", "region_code": "410102", "budget_cny": 800000,
                  "themes": ["yellow_river_culture"] if yellow else ["local_ip"],
                  "platforms": ["douyin"], "content_status": "approved"}  # fmt: skip
    payload = {"production_id": pid, "enterprise_id": eid, "version": version,
               "attributes": attributes}  # fmt: skip
    return Envelope(type=EventType.production_upserted, producer="bench", key=eid, payload=payload)


async def measure(bootstrap: str, targets: list[tuple[str, str]], rate: int, seconds: int) -> list[float]:  # fmt: skip
    consumer = await eligibility_consumer(bootstrap, fetch_max_wait_ms=MEASURING_FETCH_WAIT_MS)
    sent: dict[str, float] = {}
    latencies: list[float] = []
    total = rate * seconds

    async def receive() -> None:
        while len(latencies) < total:
            for records in (await consumer.getmany(timeout_ms=50)).values():
                now = time.perf_counter()
                for r in records:
                    cause = json.loads(r.value)["payload"].get("cause")
                    if cause in sent:
                        latencies.append(now - sent.pop(cause))

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=0)
    await producer.start()
    receiver = asyncio.create_task(receive())
    versions: dict[str, int] = {}
    t0 = time.perf_counter()
    for i in range(total):
        pid, eid = targets[i % len(targets)]
        versions[pid] = versions.get(pid, 1) + 1
        env = update(pid, eid, versions[pid], yellow=versions[pid] % 2 == 1)
        await asyncio.sleep(max(0.0, t0 + i / rate - time.perf_counter()))
        sent[str(env.event_id)] = time.perf_counter()
        await producer.send(topics.REGISTRY, env.to_bytes(), key=env.key.encode())
    await producer.stop()
    try:
        await asyncio.wait_for(receiver, timeout=30)
    except TimeoutError:
        print(f"warning: {len(sent)} event(s) without an eligibility event")
    await consumer.stop()
    return latencies


async def direct(a: argparse.Namespace) -> list[float]:
    with servers() as (pg, broker):
        dsn = await prepare(pg, broker)
        ents, prods = synthetic(a.productions)
        await load_projection(dsn, ents, prods)
        proc, port = start_service(dsn, broker.bootstrap_servers)
        async with running(proc):
            await wait_healthy(port)
            await publish_catalog(broker.bootstrap_servers)
            await asyncio.sleep(a.settle)  # group joins + the catalog's bulk runs
            # distinct productions (one at a time each, so every update is a change)
            targets = [(f"zz{i}", f"e{i % max(1, ents.height)}") for i in range(a.rate * 2)]
            return await measure(broker.bootstrap_servers, targets, a.rate, a.seconds)


async def main_async(a: argparse.Namespace) -> int:
    from registry_path import through_registry

    lat = sorted(await (direct(a) if a.direct else through_registry(a)))
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    path = "produced snapshot" if a.direct else "registry HTTP response"
    print(f"{path} -> eligibility event, {len(lat):,} updates at {a.rate}/s for {a.seconds}s: p50 {p50:.1f} ms, "
          f"p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms (target p99 < 100 ms)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--productions", type=int, default=20_000)
    ap.add_argument("--settle", type=float, default=20.0)
    ap.add_argument("--direct", action="store_true", help="produce snapshots (no registry)")
    ap.add_argument(
        "--stages", action="store_true",
        help="also print where the time goes (a second consumer: it loads the machine)",
    )  # fmt: skip
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
