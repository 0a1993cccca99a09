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
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import polars as pl
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelpolicy_common import topics
from reelpolicy_common.auth import hash_api_key, new_api_key, upsert_api_key
from reelpolicy_common.events import Envelope, EventType
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
)

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-0123456789abcdef"
REGIONS = ["410102", "410105", "310110", "610102", "500101", "440305", "330106"]
WEIGHTS = [0.1, 0.1, 0.2, 0.25, 0.15, 0.1, 0.1]


@contextlib.contextmanager
def servers() -> Iterator[tuple[EmbeddedPostgres, EmbeddedBroker]]:
    tmp = Path(tempfile.mkdtemp(prefix="rules-bench-"))
    pg = EmbeddedPostgres.start(tmp / "pg")
    broker = EmbeddedBroker.start(log_file=tmp / "tansu.log")
    try:
        yield pg, broker
    finally:
        broker.stop()
        pg.stop()


async def prepare(pg: EmbeddedPostgres, broker: EmbeddedBroker) -> str:
    from reelpolicy_common.db.migrations import apply_migrations, common_migrations, discover
    from reelpolicy_common.db.pool import connect

    await ensure_topics(bootstrap_servers=broker.bootstrap_servers)
    await ensure_database(pg.uri(), "rules")
    dsn = database_uri(pg.uri(), "rules")
    conn = await connect(dsn)
    try:
        await apply_migrations(
            conn, common_migrations() + discover("reelpolicy_rules.migrations", namespace="rules")
        )
    finally:
        await conn.close()
    return dsn


def synthetic(
    productions: int, per_enterprise: int = 10, seed: int = 5
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(enterprises, productions) rows: ids and attributes as JSON text.

    20% of productions are in Zhengzhou (4101..), half of those have the Yellow River
    theme: about 10% match ``zz-yellow-river``.
    """
    rng = np.random.default_rng(seed)
    m = max(1, productions // per_enterprise)
    ent_region = rng.choice(REGIONS, m, p=WEIGHTS)
    ents = pl.DataFrame({"enterprise_id": [f"e{i}" for i in range(m)], "region_code": ent_region})
    ents = ents.with_columns(
        pl.struct(
            pl.lit("E").alias("name"), pl.lit("9" * 18).alias("credit_code"),
            pl.col("region_code"), pl.lit("2023-05-01").alias("established_on"),
            pl.lit(20).alias("employees"), pl.lit("production_company").alias("kind"),
        ).struct.json_encode().alias("attributes")
    ).select("enterprise_id", pl.lit(1).alias("version"), "attributes")  # fmt: skip
    owner = rng.integers(0, m, productions)
    region = ent_region[owner]
    yellow = (rng.random(productions) < 0.5) & np.char.startswith(region.astype(str), "4101")
    prods = pl.DataFrame(
        {"production_id": [f"p{i}" for i in range(productions)],
         "enterprise_id": [f"e{o}" for o in owner], "region_code": region,
         "budget_cny": rng.integers(300_000, 1_500_000, productions), "yellow": yellow}
    )  # fmt: skip
    themes = (
        pl.when(pl.col("yellow"))
        .then(pl.lit(["yellow_river_culture"]))
        .otherwise(pl.lit(["local_ip"]))
    )
    prods = prods.with_columns(
        pl.struct(
            pl.col("enterprise_id"), pl.lit("P").alias("title"), pl.col("region_code"),
            pl.col("budget_cny"), themes.alias("themes"), pl.lit(["douyin"]).alias("platforms"),
            pl.lit("approved").alias("content_status"),
        ).struct.json_encode().alias("attributes")
    ).select("production_id", "enterprise_id", pl.lit(1).alias("version"), "attributes")  # fmt: skip
    return ents, prods


async def load_projection(dsn: str, ents: pl.DataFrame, prods: pl.DataFrame) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        for table, df in (("enterprises", ents), ("productions", prods)):
            buf = io.BytesIO()
            df.write_csv(buf)
            buf.seek(0)
            await conn.copy_to_table(
                table, source=buf, format="csv", header=True, columns=list(df.columns)
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


def start_service(
    dsn: str, bootstrap: str, *, name: str = "rules", port: int | None = None,
    group: str = "bench",
) -> tuple[subprocess.Popen[bytes], int]:  # fmt: skip
    port = port or free_port()
    # the relay as compose runs it (published rows deleted); OUTBOX_RETENTION_SECONDS=3600
    # in the environment measures the dev stack's default (rows kept an hour)
    env = {"OUTBOX_RETENTION_SECONDS": "0", **os.environ, "SERVICE_NAME": name,
           "DATABASE_URL": dsn, "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
           "REELPOLICY_SECRET_KEY": SECRET, "HTTP_PORT": str(port),
           "LOG_LEVEL": os.environ.get(f"{name.upper()}_LOG_LEVEL", "WARNING"),
           "KAFKA_CONSUMER_GROUP": f"{group}-{name}"}  # fmt: skip
    command = str(ROOT / f".venv/bin/reelpolicy-{name}")
    if name != "rules":
        subprocess.run([command, "migrate"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([command, "serve"], env=env)
    return proc, port


async def operator_key(dsn: str) -> str:
    """An operator API key stored in ``dsn`` (the service checks it against its table)."""
    key_id, key = new_api_key()
    conn = await asyncpg.connect(dsn)
    try:
        async with conn.transaction():
            await upsert_api_key(
                conn, key_id=key_id, key_hash=hash_api_key(key, secret_key=SECRET),
                role="operator", enterprise_id=None, label="bench", revoked=False,
            )  # fmt: skip
    finally:
        await conn.close()
    return key


async def wait_healthy(port: int, timeout: float = 300) -> float:
    t0 = time.perf_counter()
    async with httpx.AsyncClient(timeout=2) as client:
        while time.perf_counter() - t0 < timeout:
            with contextlib.suppress(httpx.HTTPError):
                r = await client.get(f"http://127.0.0.1:{port}/healthz")
                if r.status_code == 200:
                    return time.perf_counter() - t0
            await asyncio.sleep(0.5)
    raise TimeoutError("service did not become healthy")


@contextlib.asynccontextmanager
async def running(proc: subprocess.Popen[bytes]) -> AsyncIterator[None]:
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def catalog_doc(amount: int) -> dict[str, Any]:
    raw = yaml.safe_load((ROOT / "catalog/zz-yellow-river.yaml").read_text(encoding="utf-8"))
    doc: dict[str, Any] = json.loads(json.dumps(raw, default=str))
    doc["benefits"][0]["max_amount_cny"] = amount
    return doc


# How long the latency benchmarks' own consumers let a fetch wait: the services' default
# (CONSUMER_FETCH_MAX_WAIT_MS). The embedded broker answers a fetch when it polls, not
# when records arrive, so a short wait makes it poll more: two idle consumers of 16
# partitions cost it 34% of a core at 5 ms against 10.8% at 30 ms (2 cores, 2026-12-03),
# load the measured system would not otherwise carry. A record then reaches this script
# in about 6 ms (p50; at most ~18 ms) after it is on the topic, against ~3 ms at 5 ms.
MEASURING_FETCH_WAIT_MS = 30


async def eligibility_consumer(bootstrap: str, *, fetch_max_wait_ms: int) -> AIOKafkaConsumer:
    """A started consumer of every eligibility partition, positioned at the reported end.

    Tansu's reported end offsets can lag the real ones, so older records may still
    arrive; callers count only records whose ``cause`` they sent.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, fetch_max_wait_ms=fetch_max_wait_ms)
    await consumer.start()
    tps = [
        TopicPartition(topics.ELIGIBILITY, i) for i in range(topics.partitions(topics.ELIGIBILITY))
    ]
    consumer.assign(tps)
    await consumer.seek_to_end(*tps)
    for tp in tps:
        await consumer.position(tp)
    return consumer


class DirectPublisher:
    """Produces the policy event itself (``--direct``): time runs from just before."""

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap

    async def __call__(self, doc: dict[str, Any]) -> float:
        version = doc["version"]
        env = Envelope(type=EventType.policy_published, producer="bench", key=doc["id"],
                       payload={"policy_id": doc["id"], "version": version, "document": doc})  # fmt: skip
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
    # matched as bytes, not decoded: decoding 100,000 envelopes cost this process 1.4 s
    # of CPU a run, taken from the measured services. The payload of an
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
        dsn = await prepare(pg, broker)
        t = time.perf_counter()
        ents, prods = synthetic(a.productions)
        await load_projection(dsn, ents, prods)
        print(f"loaded {prods.height:,} productions / {ents.height:,} enterprises with COPY "
              f"in {time.perf_counter() - t:.1f}s")  # fmt: skip
        rules, rules_port = start_service(dsn, broker.bootstrap_servers)
        async with contextlib.AsyncExitStack() as stack:
            await stack.enter_async_context(running(rules))
            publish: Callable[[dict[str, Any]], Awaitable[float]]
            if a.direct:
                publish = DirectPublisher(broker.bootstrap_servers)
            else:
                await ensure_database(pg.uri(), "ingest")
                ingest_dsn = database_uri(pg.uri(), "ingest")
                proc, ingest_port = start_service(ingest_dsn, broker.bootstrap_servers,
                                                  name="ingest")  # fmt: skip
                await stack.enter_async_context(running(proc))
                await wait_healthy(ingest_port)
                client = await stack.enter_async_context(
                    httpx.AsyncClient(base_url=f"http://127.0.0.1:{ingest_port}", timeout=30)
                )
                publish = IngestPublisher(client, await operator_key(ingest_dsn))
            print(f"service healthy (cache loaded) after {await wait_healthy(rules_port):.1f}s")
            await asyncio.sleep(8)  # consumer group join on the embedded broker
            first, secs, n = await one_run(broker.bootstrap_servers, 1, 300_000, a.quiet, publish)
            print(f"v1 (first publication): {n:,} eligibility events, "
                  f"first after {first:.2f}s, last after {secs:.2f}s")  # fmt: skip
            times = []
            for i in range(a.runs):
                version = i + 2
                amount = 350_000 if i % 2 == 0 else 300_000
                first, secs, n = await one_run(
                    broker.bootstrap_servers, version, amount, a.quiet, publish
                )
                times.append(secs)
                print(f"v{version}: {n:,} eligibility events, "
                      f"first after {first:.2f}s, last after {secs:.2f}s")  # fmt: skip
            start = "produced policy event" if a.direct else "ingest's HTTP response"
            print(f"median {start} -> last eligibility event: {statistics.median(times):.2f}s "
                  f"(target < 5s)")  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--productions", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds without events = done")
    ap.add_argument("--direct", action="store_true",
                    help="produce the policy event here instead of submitting it to ingest")  # fmt: skip
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
