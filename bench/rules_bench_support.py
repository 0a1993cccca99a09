"""Shared by the rules benchmarks: embedded servers, a synthetic projection, the service."""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import numpy as np
import polars as pl

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


def start_service(dsn: str, bootstrap: str, *, port: int | None = None, group: str = "bench") -> tuple[subprocess.Popen[bytes], int]:  # fmt: skip
    port = port or free_port()
    env = {**os.environ, "SERVICE_NAME": "rules", "DATABASE_URL": dsn,
           "KAFKA_BOOTSTRAP_SERVERS": bootstrap, "REELPOLICY_SECRET_KEY": SECRET,
           "HTTP_PORT": str(port), "LOG_LEVEL": "WARNING", "KAFKA_CONSUMER_GROUP": group}  # fmt: skip
    proc = subprocess.Popen([str(ROOT / ".venv/bin/reelpolicy-rules"), "serve"], env=env)
    return proc, port


async def wait_healthy(port: int, timeout: float = 300) -> float:
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        with contextlib.suppress(Exception):
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                if r.status == 200:
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
