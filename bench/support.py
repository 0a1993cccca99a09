"""What the benchmarks share (not a benchmark itself).

- the embedded servers and the services as processes (``servers``, ``start_service``,
  ``wait_healthy``, ``running``), an operator key (``operator_key``);
- the rules database: migrated (``prepare_rules``) and loaded with a synthetic
  projection by COPY (``synthetic``, ``load_projection``); the registry's schema
  (``migrate_registry``);
- the catalog on the policy topic (``publish_catalog``), a consumer of the eligibility
  topic (``eligibility_consumer``);
- a light HTTP/1.1 load client (``Connection``);
- CPU accounting of this process, other processes and a PostgreSQL server.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import resource
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import numpy as np
import polars as pl
import yaml
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelpolicy_common.auth import hash_api_key, new_api_key, upsert_api_key
from reelpolicy_common.db.migrations import apply_migrations, common_migrations, discover
from reelpolicy_common.db.pool import connect
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
)

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-key-0123456789abcdef"
"""``REELPOLICY_SECRET_KEY`` of the services the benchmarks start."""

# --- servers and services ---------------------------------------------------------------


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


def start_service(
    dsn: str,
    bootstrap: str,
    *,
    name: str = "rules",
    port: int | None = None,
    group: str = "bench",
) -> tuple[subprocess.Popen[bytes], int]:
    """``reelpolicy-<name> serve`` on ``dsn`` (migrated first, except rules: see
    ``prepare_rules``); the process and its HTTP port."""
    port = port or free_port()
    # the relay as compose runs it (published rows deleted); OUTBOX_RETENTION_SECONDS=3600
    # in the environment measures the dev stack's default (rows kept an hour)
    env = {
        "OUTBOX_RETENTION_SECONDS": "0",
        **os.environ,
        "SERVICE_NAME": name,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REELPOLICY_SECRET_KEY": SECRET,
        "HTTP_PORT": str(port),
        "LOG_LEVEL": os.environ.get(f"{name.upper()}_LOG_LEVEL", "WARNING"),
        "KAFKA_CONSUMER_GROUP": f"{group}-{name}",
    }
    command = str(ROOT / f".venv/bin/reelpolicy-{name}")
    if name != "rules":
        subprocess.run([command, "migrate"], env=env, check=True, capture_output=True)
    proc = subprocess.Popen([command, "serve"], env=env)
    return proc, port


async def wait_healthy(port: int, timeout: float = 300) -> float:
    """Seconds until the service on ``port`` answers ``/healthz`` with 200."""
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
    """Terminates ``proc`` on the way out (kills it if it does not stop in 20 s)."""
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


async def operator_key(dsn: str) -> str:
    """An operator API key stored in ``dsn`` (the service checks it against its table)."""
    key_id, key = new_api_key()
    conn = await connect(dsn)
    try:
        async with conn.transaction():
            await upsert_api_key(
                conn,
                key_id=key_id,
                key_hash=hash_api_key(key, secret_key=SECRET),
                role="operator",
                enterprise_id=None,
                label="bench",
                revoked=False,
            )
    finally:
        await conn.close()
    return key


# --- databases and their data ----------------------------------------------------------


async def prepare_rules(pg: EmbeddedPostgres, broker: EmbeddedBroker) -> str:
    """Every topic, and a migrated ``rules`` database; its DSN."""
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


async def migrate_registry(conn: asyncpg.Connection) -> None:
    """The registry's schema: the shared migrations and its own."""
    await apply_migrations(
        conn,
        common_migrations() + discover("reelpolicy_registry.migrations", namespace="registry"),
    )


REGIONS = ["410102", "410105", "310110", "610102", "500101", "440305", "330106"]
WEIGHTS = [0.1, 0.1, 0.2, 0.25, 0.15, 0.1, 0.1]


def synthetic(
    productions: int, per_enterprise: int = 10, seed: int = 5
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(enterprises, productions) rows of the rules projection: ids and attributes as
    JSON text.

    20% of productions are in Zhengzhou (4101..), half of those have the Yellow River
    theme: about 10% match ``zz-yellow-river``.
    """
    rng = np.random.default_rng(seed)
    m = max(1, productions // per_enterprise)
    ent_region = rng.choice(REGIONS, m, p=WEIGHTS)
    ents = pl.DataFrame({"enterprise_id": [f"e{i}" for i in range(m)], "region_code": ent_region})
    ents = ents.with_columns(
        pl.struct(
            pl.lit("E").alias("name"),
            pl.lit("9" * 18).alias("credit_code"),
            pl.col("region_code"),
            pl.lit("2023-05-01").alias("established_on"),
            pl.lit(20).alias("employees"),
            pl.lit("production_company").alias("kind"),
        )
        .struct.json_encode()
        .alias("attributes")
    ).select("enterprise_id", pl.lit(1).alias("version"), "attributes")
    owner = rng.integers(0, m, productions)
    region = ent_region[owner]
    yellow = (rng.random(productions) < 0.5) & np.char.startswith(region.astype(str), "4101")
    prods = pl.DataFrame(
        {
            "production_id": [f"p{i}" for i in range(productions)],
            "enterprise_id": [f"e{o}" for o in owner],
            "region_code": region,
            "budget_cny": rng.integers(300_000, 1_500_000, productions),
            "yellow": yellow,
        }
    )
    themes = (
        pl.when(pl.col("yellow"))
        .then(pl.lit(["yellow_river_culture"]))
        .otherwise(pl.lit(["local_ip"]))
    )
    prods = prods.with_columns(
        pl.struct(
            pl.col("enterprise_id"),
            pl.lit("P").alias("title"),
            pl.col("region_code"),
            pl.col("budget_cny"),
            themes.alias("themes"),
            pl.lit(["douyin"]).alias("platforms"),
            pl.lit("approved").alias("content_status"),
        )
        .struct.json_encode()
        .alias("attributes")
    ).select("production_id", "enterprise_id", pl.lit(1).alias("version"), "attributes")
    return ents, prods


async def load_projection(dsn: str, ents: pl.DataFrame, prods: pl.DataFrame) -> None:
    """``synthetic``'s rows into the rules projection, by COPY."""
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


async def seeded_rules(
    pg: EmbeddedPostgres, broker: EmbeddedBroker, productions: int
) -> tuple[str, pl.DataFrame, pl.DataFrame]:
    """``prepare_rules``, then ``synthetic(productions)`` loaded into its projection;
    prints how long the load took. The DSN, enterprises and productions."""
    dsn = await prepare_rules(pg, broker)
    t = time.perf_counter()
    ents, prods = synthetic(productions)
    await load_projection(dsn, ents, prods)
    print(
        f"loaded {prods.height:,} productions / {ents.height:,} enterprises with COPY "
        f"in {time.perf_counter() - t:.1f}s"
    )
    return dsn, ents, prods


# --- the topics -------------------------------------------------------------------------


def catalog_events() -> list[Envelope]:
    """``policy.published`` of every catalog policy, as version 1."""
    out = []
    for path in sorted((ROOT / "catalog").glob("*.yaml")):
        doc: dict[str, Any] = json.loads(json.dumps(yaml.safe_load(path.read_text()), default=str))
        payload = {"policy_id": doc["id"], "version": 1, "document": {**doc, "version": 1}}
        out.append(
            Envelope(
                type=EventType.policy_published, producer="bench", key=doc["id"], payload=payload
            )
        )
    return out


async def publish_catalog(bootstrap: str) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for env in catalog_events():
            await producer.send_and_wait(topics.POLICY, env.to_bytes(), key=env.key.encode())
    finally:
        await producer.stop()


# How long the latency benchmarks' own consumers let a fetch wait: the services' default
# (CONSUMER_FETCH_MAX_WAIT_MS). The embedded broker answers a fetch when it polls, not
# when records arrive, so a shorter wait makes it poll more: load the measured system
# would not otherwise carry, for little earlier arrival here.
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


# --- HTTP load --------------------------------------------------------------------------


class Connection:
    """One keep-alive HTTP/1.1 connection for the load: requests go out pre-encoded.

    httpx costs about a millisecond of CPU a request, and with many pooled connections
    its pool bookkeeping (every request scans every connection) makes the load generator
    itself the bottleneck at a few hundred requests a second; this costs a fraction.
    """

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, url: str) -> Connection:
        host, port = url.removeprefix("http://").split(":")
        return cls(*await asyncio.open_connection(host, int(port)))

    async def request(self, head: bytes, body: bytes) -> int:
        """Send ``head`` (the request line and headers, without Content-Length) and
        ``body``; returns the status code once the whole response is read."""
        self.writer.write(head + b"Content-Length: %d\r\n\r\n" % len(body) + body)
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            if name.lower() == b"content-length":
                length = int(value)
            elif name.lower() == b"transfer-encoding":
                raise RuntimeError("chunked responses are not expected here")
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


# --- CPU accounting (Linux /proc) ------------------------------------------------------


def own_cpu_seconds() -> float:
    """CPU time (user + system) this process has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stat_fields(pid: int | str) -> list[str]:
    """``/proc/<pid>/stat`` after the command name: [state, ppid, ...]; utime and stime
    (clock ticks) are at 11 and 12, the reaped children's at 13 and 14."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_cpu_seconds(pids: Iterable[int]) -> float:
    """CPU time (user + system) the live processes ``pids`` have used so far."""
    ticks = sum(int(f[11]) + int(f[12]) for f in map(_stat_fields, pids))
    return ticks / os.sysconf("SC_CLK_TCK")


def postgres_cpu_seconds(data_dir: Path) -> float:
    """CPU time (user + system) of the PostgreSQL server in ``data_dir`` so far: the
    postmaster, its live processes (backends, WAL writer, checkpointer...) and those it
    has reaped."""
    postmaster = int((data_dir / "postmaster.pid").read_text().split()[0])
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = _stat_fields(entry.name)
        except OSError:  # ended meanwhile
            continue
        pid, ppid = int(entry.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15])  # utime, stime, cutime, cstime
        elif ppid == postmaster:
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")
