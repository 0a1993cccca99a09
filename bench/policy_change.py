"""Benchmark: a new version of a catalog policy over 1,000,000 productions in the projection.

    .venv/bin/python bench/policy_change.py [--productions 1000000] [--runs 3] [--direct]

Starts an embedded PostgreSQL and broker, loads the synthetic projection straight into
the rules database with COPY, starts ``reelpolicy-rules serve`` (it loads the columnar
cache on start) and ``reelpolicy-ingest serve``, then submits versions of
``zz-yellow-river`` whose amount changes for every matching production (~100,000) to
ingest (``POST /v1/policies``). Time runs from ingest's HTTP response to the arrival
of the last ``eligibility.changed`` event of that version (with ``--direct``: from
just before this script produces the policy event itself, no ingest). Reports every
run and the median of the runs after the first publication. The services' relays
delete rows as they publish them, as in compose (``OUTBOX_RETENTION_SECONDS=0``; set
it in the environment to measure another value).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import statistics
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import yaml
from aiokafka import AIOKafkaProducer

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import database_uri, ensure_database
from support import (
    ROOT,
    eligibility_consumer,
    operator_key,
    running,
    seeded_rules,
    servers,
    start_service,
    wait_healthy,
)


def catalog_doc(amount: int) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "catalog/zz-yellow-river.yaml").read_text(encoding="utf-8"))
    doc: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    doc["benefits"][0]["max_amount_cny"] = amount
    return doc


class DirectPublisher:
    """Produces the policy event itself (``--direct``): time runs from just before."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def __call__(self, doc: dict[str, Any]) -> float:
        version = doc["version"]
        env = Envelope(
            type=EventType.policy_published,
            producer="bench",
            key=doc["id"],
            payload={"policy_id": doc["id"], "version": version, "document": doc},
        )
        producer = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await producer.start()
        try:
            t0 = time.perf_counter()
            await producer.send_and_wait(topics.POLICY, env.to_bytes(), key=env.key.encode())
        finally:
            await producer.stop()
        return t0


class IngestPublisher:
    """Submits the document to ingest (``POST /v1/policies``): time runs from its response."""

    def __init__(self, client: httpx.AsyncClient, key: str) -> None:
        self.client, self.key = client, key

    async def __call__(self, doc: dict[str, Any]) -> float:
        r = await self.client.post(
            "/v1/policies", json=doc, headers={"Authorization": f"Bearer {self.key}"}
        )
        t0 = time.perf_counter()
        assert r.status_code == 201, r.text
        return t0


async def one_run(
    bootstrap: str,
    version: int,
    amount: int,
    quiet: float,
    publish: Callable[[dict[str, Any]], Awaitable[float]],
) -> tuple[float, float, int]:
    """Seconds to the first and to the last eligibility event of the version, and their count."""
    consumer = await eligibility_consumer(bootstrap, fetch_max_wait_ms=10)
    doc = {**catalog_doc(amount), "version": version}
    # matched as bytes, not decoded: decoding every envelope would cost this process CPU
    # taken from the measured services. The payload of an
    # eligibility.changed event holds these two fields side by side; so does the impact
    # summary's, which is told apart by its type.
    ours = b'"policy_id":' + json.dumps(doc["id"]).encode() + b',"policy_version":'
    ours += str(version).encode() + b","
    impact_type = b'"type":"' + EventType.policy_impact.value.encode() + b'"'
    t0 = await publish(doc)
    first, last, count, impact = 0.0, t0, 0, False
    idle_since = time.perf_counter()
    try:
        while not impact or time.perf_counter() - idle_since < quiet:
            got = False
            for records in (await consumer.getmany(timeout_ms=100, max_records=10000)).values():
                for r in records:
                    if impact_type in r.value:
                        e = Envelope.model_validate_json(r.value)
                        if e.key == doc["id"] and e.payload["policy_version"] == version:
                            impact = got = True
                    elif ours in r.value:
                        if not count:  # the first match, decoded: it is what we count
                            e = Envelope.model_validate_json(r.value)
                            assert e.type is EventType.eligibility_changed, e.type
                            assert e.payload["policy_id"] == doc["id"], e.payload
                            assert e.payload["policy_version"] == version, e.payload
                        count += 1
                        last = time.perf_counter()
                        first = first or last
                        got = True
            if got:
                idle_since = time.perf_counter()
            if time.perf_counter() - t0 > 300:
                raise TimeoutError("no impact event")
    finally:
        await consumer.stop()
    return (first or t0) - t0, last - t0, count


async def main_async(a: argparse.Namespace) -> int:
    with servers() as (pg, broker):
        dsn, _, _ = await seeded_rules(pg, broker, a.productions)
        rules, rules_port = start_service(dsn, broker.bootstrap_servers)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(running(rules))
            publish: Callable[[dict[str, Any]], Awaitable[float]]
            if a.direct:
                publish = DirectPublisher(broker.bootstrap_servers)
            else:
                await ensure_database(pg.uri(), "ingest")
                ingest_dsn = database_uri(pg.uri(), "ingest")
                proc, ingest_port = start_service(
                    ingest_dsn, broker.bootstrap_servers, name="ingest"
                )
                await stack.enter_async_context(running(proc))
                await wait_healthy(ingest_port)
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest_port}", timeout=30)
                )
                publish = IngestPublisher(client, await operator_key(ingest_dsn))
            print(f"service healthy (cache loaded) after {await wait_healthy(rules_port):.1f}s")
            await asyncio.sleep(8)  # consumer group join on the embedded broker
            first, secs, n = await one_run(broker.bootstrap_servers, 1, 300_000, a.quiet, publish)
            print(
                f"v1 (first publication): {n:,} eligibility events, "
                f"first after {first:.2f}s, last after {secs:.2f}s"
            )
            times = []
            for i in range(a.runs):
                version = i + 2
                amount = 350_000 if i % 2 == 0 else 300_000
                first, secs, n = await one_run(
                    broker.bootstrap_servers, version, amount, a.quiet, publish
                )
                times.append(secs)
                print(
                    f"v{version}: {n:,} eligibility events, "
                    f"first after {first:.2f}s, last after {secs:.2f}s"
                )
            start = "produced policy event" if a.direct else "ingest's HTTP response"
            print(
                f"median {start} -> last eligibility event: {statistics.median(times):.2f}s "
                f"(target < 5s)"
            )
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--productions", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds without events = done")
    ap.add_argument(
        "--direct",
        action="store_true",
        help="produce the policy event here instead of submitting it to ingest",
    )
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
