"""Benchmark: registry update -> eligibility event latency under a steady rate.

    .venv/bin/python bench/registry_latency.py [--rate 200] [--seconds 60] [--productions 20000]
                                               [--direct] [--stages]

Starts ``reelpolicy-registry serve`` and ``reelpolicy-rules serve`` (their own
databases, one broker), publishes every policy of the catalog, imports ``--productions``
generated productions plus ``2 × --rate`` Zhengzhou productions through
``POST /v1/import`` and waits until the rules projection holds them all. Then it sends
``PATCH /v1/productions/{id}`` at ``--rate`` per second (pre-encoded requests on 16
keep-alive connections, following one schedule), each toggling the Yellow River theme
of one Zhengzhou production, so each one changes its ``zz-yellow-river`` result.
Latency runs from the registry's HTTP response to the arrival of the eligibility event
on the topic, at a consumer fetching as the services do (``MEASURING_FETCH_WAIT_MS``);
the PATCH latency, from when each request was due, is printed too. Reports p50 / p99.
With ``--stages`` it also prints where the time goes (from the records' timestamps),
watching the registry topic with a second consumer, which costs the broker and this
process CPU that the services share.

``--direct`` leaves the registry out: the projection is loaded with COPY and the
``production.upserted`` snapshots are produced to the registry topic by this script;
latency then runs from that produce.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_datagen.registry_rows import (
    RegionPicker,
    credit_code,
    enterprise_row,
    generate_rows,
)
from reelpolicy_devstack.servers import database_uri, ensure_database, free_port
from reelpolicy_devstack.services import ServiceGroup, run
from support import (
    MEASURING_FETCH_WAIT_MS,
    SECRET,
    Connection,
    eligibility_consumer,
    load_projection,
    operator_key,
    prepare_rules,
    publish_catalog,
    running,
    servers,
    start_service,
    synthetic,
    wait_healthy,
)

POLICY = "zz-yellow-river"


# --- the default: updates through the registry's HTTP API ------------------------------


def import_lines(a: argparse.Namespace) -> tuple[bytes, int]:
    """JSON Lines: generated rows, then the Zhengzhou targets (``T<n>`` external ids)."""
    rows: list[dict[str, Any]] = list(
        generate_rows(enterprises=max(1, a.productions // 10), productions=a.productions, seed=3)
    )
    rng, regions = random.Random(11), RegionPicker()
    owners = []
    for n in range(40):
        ent = {**enterprise_row(rng, regions, 10**6 + n), "region_code": "410102"}
        ent["credit_code"] = credit_code(rng, "410102")
        owners.append(ent)
    targets = [
        {
            "type": "production",
            "enterprise_credit_code": owners[i % 40]["credit_code"],
            "external_id": f"T{i}",
            "title": f"黄河{i}",
            "region_code": "410102",
            "themes": ["local_ip"],
            "platforms": ["douyin"],
            "content_status": "approved",
        }
        for i in range(a.rate * 2)
    ]
    rows += owners + targets
    body = "\n".join(json.dumps(r, ensure_ascii=False) for r in rows).encode()
    return body, sum(1 for r in rows if r["type"] == "production")


async def wait_for_projection(dsn: str, productions: int, timeout: float = 300) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        deadline = time.monotonic() + timeout
        while await conn.fetchval("SELECT count(*) FROM productions") < productions:
            if time.monotonic() > deadline:
                raise TimeoutError("the rules projection did not receive every production")
            await asyncio.sleep(0.5)
    finally:
        await conn.close()


async def topic_end_consumer(bootstrap: str, topic: str) -> AIOKafkaConsumer:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, fetch_max_wait_ms=MEASURING_FETCH_WAIT_MS
    )
    await consumer.start()
    tps = [TopicPartition(topic, i) for i in range(topics.partitions(topic))]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    return consumer


async def measure_through_registry(
    url: str,
    key: str,
    bootstrap: str,
    targets: list[str],
    rate: int,
    seconds: int,
    *,
    stages_too: bool,
) -> list[float]:
    """Latencies; with ``stages_too``, also where the time goes (a second consumer, of
    the registry topic: it costs the broker and this process CPU the services share)."""
    consumer = await eligibility_consumer(bootstrap, fetch_max_wait_ms=MEASURING_FETCH_WAIT_MS)
    snapshots = await topic_end_consumer(bootstrap, topics.REGISTRY) if stages_too else None
    hop: list[float] = []  # HTTP response -> the registry's snapshot on the topic
    answered: dict[str, float] = {}
    # where the time goes, from the records' own (producer) timestamps, wall clock:
    # response -> snapshot produced -> eligibility produced -> eligibility read here
    answered_wall: dict[str, float] = {}
    produced: dict[str, float] = {}  # production id -> its latest snapshot's timestamp
    stages: dict[str, list[float]] = {"registry": [], "rules": [], "delivery": []}
    early: dict[str, float] = {}  # events read before this script saw the HTTP response
    latencies: list[float] = []
    http: list[float] = []
    total = rate * seconds

    async def receive() -> None:
        while len(latencies) < total:
            for records in (await consumer.getmany(timeout_ms=50)).values():
                now = time.perf_counter()
                for r in records:
                    payload = json.loads(r.value)["payload"]
                    if payload["policy_id"] != POLICY:
                        continue
                    if (sent := answered.pop(payload["subject_id"], None)) is not None:
                        latencies.append(now - sent)
                        stage(payload["subject_id"], r.timestamp / 1000)
                    else:
                        early[payload["subject_id"]] = now

    async def watch_registry() -> None:
        assert snapshots is not None
        while True:
            for records in (await snapshots.getmany(timeout_ms=50)).values():
                now = time.perf_counter()
                for r in records:
                    pid = json.loads(r.value)["payload"].get("production_id")
                    if pid in answered:
                        hop.append(now - answered[pid])
                        produced[pid] = r.timestamp / 1000

    def stage(pid: str, eligibility_at: float) -> None:
        wall, snapshot_at = answered_wall.pop(pid, None), produced.pop(pid, None)
        if wall is not None and snapshot_at is not None:
            stages["registry"].append(snapshot_at - wall)
            stages["rules"].append(eligibility_at - snapshot_at)
            stages["delivery"].append(time.time() - eligibility_at)

    receiver = asyncio.create_task(receive())
    watcher = asyncio.create_task(watch_registry()) if snapshots is not None else None
    t0 = time.perf_counter() + 0.5
    schedule = iter(range(total))

    bodies = [b'{"themes": ["yellow_river_culture"]}', b'{"themes": ["local_ip"]}']
    heads = {
        pid: (
            f"PATCH /v1/productions/{pid} HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        ).encode()
        for pid in targets
    }

    async def sender() -> None:
        connection = await Connection.open(url)
        try:
            for i in schedule:
                due = t0 + i / rate
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                pid = targets[i % len(targets)]
                status = await connection.request(heads[pid], bodies[(i // len(targets)) % 2])
                if status != 200:
                    raise RuntimeError(f"PATCH answered {status}")
                record(pid, due)
        finally:
            connection.close()

    def record(pid: str, due: float) -> None:
        now = time.perf_counter()
        if early.pop(pid, None) is not None:
            latencies.append(0.0)  # the event beat this script to the response
        else:
            answered[pid] = now
            answered_wall[pid] = time.time()
        http.append(now - due)  # from when it was due: a late sender shows here

    await asyncio.gather(*(sender() for _ in range(16)))
    try:
        await asyncio.wait_for(receiver, timeout=30)
    except TimeoutError:
        print(f"warning: {len(answered)} update(s) without an eligibility event")
    await consumer.stop()
    if watcher is not None and snapshots is not None:
        watcher.cancel()
        await snapshots.stop()
    hop.sort()
    if hop:
        print(
            f"HTTP response -> registry snapshot on the topic: p50 {hop[len(hop) // 2] * 1000:.1f}"
            f" ms, p99 {hop[int(len(hop) * 0.99) - 1] * 1000:.1f} ms ({len(hop):,} seen)"
        )
    for name, values in stages.items():
        values.sort()
        if values:
            print(
                f"  stage {name}: p50 {values[len(values) // 2] * 1000:.1f} ms,"
                f" p99 {values[int(len(values) * 0.99) - 1] * 1000:.1f} ms"
            )
    http.sort()
    print(
        f"PATCH (due -> response): p50 {http[len(http) // 2] * 1000:.1f} ms,"
        f" p99 {http[int(len(http) * 0.99) - 1] * 1000:.1f} ms"
    )
    return latencies


async def report_versions(dsn: str, targets: list[str], sent: int) -> None:
    """How many of the updates changed a production (a PATCH that changes nothing keeps
    the version and emits nothing): the rules history can hold only that many."""
    conn = await asyncpg.connect(dsn)
    try:
        written = await conn.fetchval(
            "SELECT sum(version - 1) FROM productions WHERE id = ANY($1::uuid[])", targets
        )
    finally:
        await conn.close()
    print(f"registry: {written:,} new versions for the {sent:,} updates sent")


async def report_history(dsn: str, targets: list[str], sent: int) -> None:
    """Every update should have left one change in the rules history: count them."""
    conn = await asyncpg.connect(dsn)
    try:
        changes = await conn.fetchval(
            "SELECT count(*) FROM result_history WHERE policy_id = $1"
            " AND subject_id = ANY($2::text[])",
            POLICY,
            targets,
        )
    finally:
        await conn.close()
    print(f"rules history: {changes:,} {POLICY} change(s) for the {sent:,} updates sent")


async def through_registry(a: argparse.Namespace) -> list[float]:
    with servers() as (pg, broker):
        rules_dsn = await prepare_rules(pg, broker)
        await ensure_database(pg.uri(), "registry")
        registry_dsn = database_uri(pg.uri(), "registry")
        # both relays as compose runs them (published rows deleted), as start_rules does
        env = {
            "OUTBOX_RETENTION_SECONDS": "0",
            **os.environ,
            "DATABASE_URL": registry_dsn,
            "KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "REELPOLICY_SECRET_KEY": SECRET,
            "LOG_LEVEL": "WARNING",
        }
        run("registry", "migrate", env=env)
        key = await operator_key(registry_dsn)
        proc, rules_port = start_service(rules_dsn, broker.bootstrap_servers)
        group = ServiceGroup()
        registry = group.start(
            "registry",
            port=free_port(),
            env=env,
            log_dir=Path(tempfile.mkdtemp(prefix="registry-bench-")),
        )
        try:
            async with running(proc):
                await wait_healthy(rules_port)
                await asyncio.to_thread(group.wait_healthy, timeout=60)
                await publish_catalog(broker.bootstrap_servers)
                body, productions = import_lines(a)
                async with httpx.AsyncClient(base_url=registry.url, timeout=120) as client:
                    imported = await client.post(
                        "/v1/import",
                        content=body,
                        headers={
                            "Content-Type": "application/x-ndjson",
                            "Authorization": f"Bearer {key}",
                        },
                    )
                report = imported.json()
                print(
                    f"imported: {report['accepted']:,} rows, {report['rejected']} rejected",
                    flush=True,
                )
                await wait_for_projection(rules_dsn, productions - report["rejected"])
                await asyncio.sleep(a.settle)  # the catalog's bulk runs, group joins
                conn = await asyncpg.connect(registry_dsn)
                rows = await conn.fetch("SELECT id FROM productions WHERE external_id LIKE 'T%'")
                await conn.close()
                targets = sorted(str(r["id"]) for r in rows)
                print(
                    f"measuring: {a.rate}/s for {a.seconds}s over {len(targets):,} productions",
                    flush=True,
                )
                url, bootstrap = registry.url, broker.bootstrap_servers
                latencies = await measure_through_registry(
                    url, key, bootstrap, targets, a.rate, a.seconds, stages_too=a.stages
                )
                await report_versions(registry_dsn, targets, a.rate * a.seconds)
                await report_history(rules_dsn, targets, a.rate * a.seconds)
                return latencies
        finally:
            group.stop()


# --- --direct: the registry left out, snapshots produced here --------------------------


def update(pid: str, eid: str, version: int, yellow: bool) -> Envelope:
    attributes = {
        "enterprise_id": eid,
        "title": "P",
        "region_code": "410102",
        "budget_cny": 800000,
        "themes": ["yellow_river_culture"] if yellow else ["local_ip"],
        "platforms": ["douyin"],
        "content_status": "approved",
    }
    payload = {
        "production_id": pid,
        "enterprise_id": eid,
        "version": version,
        "attributes": attributes,
    }
    return Envelope(type=EventType.production_upserted, producer="bench", key=eid, payload=payload)


async def measure_direct(
    bootstrap: str, targets: list[tuple[str, str]], rate: int, seconds: int
) -> list[float]:
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
        dsn = await prepare_rules(pg, broker)
        ents, prods = synthetic(a.productions)
        await load_projection(dsn, ents, prods)
        proc, port = start_service(dsn, broker.bootstrap_servers)
        async with running(proc):
            await wait_healthy(port)
            await publish_catalog(broker.bootstrap_servers)
            await asyncio.sleep(a.settle)  # group joins + the catalog's bulk runs
            # distinct productions (one at a time each, so every update is a change)
            targets = [(f"zz{i}", f"e{i % max(1, ents.height)}") for i in range(a.rate * 2)]
            return await measure_direct(broker.bootstrap_servers, targets, a.rate, a.seconds)


async def main_async(a: argparse.Namespace) -> int:
    lat = sorted(await (direct(a) if a.direct else through_registry(a)))
    p50 = statistics.median(lat) * 1000
    p99 = lat[int(len(lat) * 0.99) - 1] * 1000
    path = "produced snapshot" if a.direct else "registry HTTP response"
    print(
        f"{path} -> eligibility event, {len(lat):,} updates at {a.rate}/s for {a.seconds}s: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms, max {lat[-1] * 1000:.1f} ms (target p99 < 100 ms)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=int, default=200)
    ap.add_argument("--seconds", type=int, default=60)
    ap.add_argument("--productions", type=int, default=20_000)
    ap.add_argument("--settle", type=float, default=20.0)
    ap.add_argument("--direct", action="store_true", help="produce snapshots (no registry)")
    ap.add_argument(
        "--stages",
        action="store_true",
        help="also print where the time goes (a second consumer: it loads the machine)",
    )
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
