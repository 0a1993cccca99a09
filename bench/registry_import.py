"""Registry benchmark: import throughput, outbox drain time, single POST latency.

    .venv/bin/python bench/registry_import.py                      # 100k + 1M rows
    .venv/bin/python bench/registry_import.py --enterprises 10000 --productions 100000
    .venv/bin/python bench/registry_import.py --import-writers 3 --rate 0  # import only
    .venv/bin/python bench/registry_import.py --validate-processes 0 --rate 0  # in a thread

Starts an embedded PostgreSQL and broker, migrates, generates synthetic JSON Lines
(``reelpolicy_datagen.registry_rows``), imports them through the same handler the
``POST /v1/import`` endpoint uses, prints rows/s stored and where the CPU went (per row:
this process, the validation workers, PostgreSQL), then runs the outbox
relay and prints the time until the broker has acknowledged the last event (then checks
the topic's record count from fetch high watermarks). Finally it runs the registry
as compose does (``reelpolicy-registry serve``, a subprocess) and sends single
``POST /v1/enterprises`` at a fixed rate, printing p50/p99 latency; and peak RSS.
Targets: >= 50,000 rows/s stored; every event published within 60 s after the
import returns; p99 reported at 200 req/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition

from reelpolicy_common.db.pool import connect, create_pool
from reelpolicy_common.kafka import KafkaRecordPublisher, ensure_topics, make_producer
from reelpolicy_common.outbox import OutboxRelay
from reelpolicy_contracts import topics
from reelpolicy_datagen.registry_rows import RegionPicker, enterprise_row, generate_rows
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
    wait_for_port,
)
from reelpolicy_registry.adapters.import_workers import validation_processes
from reelpolicy_registry.adapters.postgres import RegistryUnitOfWork
from reelpolicy_registry.domain.import_files import jsonl_rows
from reelpolicy_registry.domain.import_validation import validate_chunk
from reelpolicy_registry.handlers.imports import import_rows
from support import (
    SECRET,
    Connection,
    migrate_registry,
    operator_key,
    own_cpu_seconds,
    postgres_cpu_seconds,
    process_cpu_seconds,
)

CONNECTIONS = 16  # keep-alive connections of the POST load
# OUTBOX_RETENTION_SECONDS of the relays, as in compose (0: rows deleted as published)
RELAY_RETENTION_SECONDS = float(os.environ.get("OUTBOX_RETENTION_SECONDS", "0"))


class CpuSplit:
    """Where the CPU of a stretch of work went: this process, the validation workers
    (``workers``, live processes) and the PostgreSQL server."""

    def __init__(self, pg_data: Path, workers: Iterable[int]) -> None:
        self._pg_data = pg_data
        self._workers = list(workers)
        self._start = self._now()

    def _now(self) -> tuple[float, float, float]:
        return (
            own_cpu_seconds(),
            process_cpu_seconds(self._workers),
            postgres_cpu_seconds(self._pg_data),
        )

    def report(self, rows: int, elapsed: float) -> str:
        """The CPU a row since this was made; call it while the workers still run."""
        own, workers, postgres = (b - a for a, b in zip(self._start, self._now(), strict=True))
        total = own + workers + postgres
        return (
            f"CPU per row stored: this process {own / rows * 1e6:.1f} µs, validation workers"
            f" {workers / rows * 1e6:.1f} µs, PostgreSQL {postgres / rows * 1e6:.1f} µs;"
            f" total {total / rows * 1e6:.1f} µs ({total / elapsed:.2f} of {os.cpu_count()}"
            " cores busy)"
        )


def write_data(path: Path, enterprises: int, productions: int, seed: int) -> int:
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for row in generate_rows(enterprises=enterprises, productions=productions, seed=seed):
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


async def records_on_topic(bootstrap: str, topic: str) -> int:
    """How many records ``topic`` holds: the sum of its partitions' high watermarks.

    Read from fetch responses (one small fetch per partition from offset 0), which the
    embedded broker answers correctly; its ``ListOffsets`` (``end_offsets``) does not.
    """
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, group_id=None, max_partition_fetch_bytes=1024
    )
    await consumer.start()
    try:
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        consumer.assign(partitions)
        for tp in partitions:
            consumer.seek(tp, 0)
        marks: dict[TopicPartition, int] = {}
        async with asyncio.timeout(60):
            while len(marks) < len(partitions):
                await consumer.getmany(timeout_ms=200, max_records=1)
                for tp in partitions:
                    if (high := consumer.highwater(tp)) is not None:
                        marks[tp] = high
        return sum(marks.values())
    finally:
        await consumer.stop()


async def import_and_relay(
    dsn: str,
    bootstrap: str,
    data: Path,
    chunk_rows: int,
    writers: int,
    processes: int,
    pg_data: Path,
) -> None:
    pool = await create_pool(dsn, max_size=writers + 2)
    validators = validation_processes(processes)
    if validators is not None:  # started before the clock, as the service keeps them
        await asyncio.get_running_loop().run_in_executor(validators, validate_chunk, [])
    try:
        with data.open(encoding="utf-8") as f:
            # the pool's pid -> process map (private, but there since Python 3.2)
            workers = getattr(validators, "_processes", None) or {}
            cpu = CpuSplit(pg_data, workers=workers)
            started = time.perf_counter()
            report = await import_rows(
                uow=lambda: RegistryUnitOfWork(pool),
                rows=jsonl_rows(f),
                chunk_rows=chunk_rows,
                writers=writers,
                validators=validators,
                validate_ahead=max(1, processes),
            )
            elapsed = time.perf_counter() - started
        stored = report.accepted
        split = cpu.report(stored, elapsed)
        if validators is not None:
            validators.shutdown()
        print(
            f"import: {stored:,} rows stored, {report.rejected} rejected in {elapsed:.1f} s"
            f" = {stored / elapsed:,.0f} rows/s"
        )
        print(f"import: {split}")
        events = int(await pool.fetchval("SELECT count(*) FROM outbox WHERE sent_at IS NULL"))
        producer = make_producer(bootstrap_servers=bootstrap, enable_idempotence=False)
        await producer.start()
        relay = OutboxRelay(  # as compose runs it: published rows deleted
            pool=pool,
            publisher=KafkaRecordPublisher(producer),
            batch_size=5000,
            retention_seconds=RELAY_RETENTION_SECONDS,
        )
        relay_started = time.perf_counter()
        published = await relay.drain()  # returns once every row is acknowledged by the broker
        drained = time.perf_counter() - relay_started
        await producer.stop()
        on_topic = await records_on_topic(bootstrap, topics.REGISTRY)
        print(
            f"relay: {published:,} of {events:,} events acknowledged by the broker"
            f" {drained:.1f} s after the import returned ({published / drained:,.0f} events/s);"
            f" the topic holds {on_topic:,} records"
        )
        # What autovacuum does soon after a bulk load; without it the next queries
        # plan with the pre-relay statistics (a million unsent outbox rows).
        started = time.perf_counter()
        await pool.execute("VACUUM ANALYZE outbox, enterprises, productions")
        print(f"vacuum analyze: {time.perf_counter() - started:.1f} s")
    finally:
        await pool.close()


async def post_latency(
    dsn: str,
    bootstrap: str,
    rate: float,
    seconds: float,
    server_workers: int,
    log_path: Path,
    *,
    when: str,
    seed: int,
) -> None:
    port = free_port()
    env = {
        "OUTBOX_RETENTION_SECONDS": str(RELAY_RETENTION_SECONDS),
        **os.environ,
        "DATABASE_URL": dsn,
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "REELPOLICY_SECRET_KEY": SECRET,
        "HTTP_PORT": str(port),
        "LOG_LEVEL": "WARNING",
    }
    server_log = open(log_path, "ab")  # noqa: ASYNC230, SIM115 (closed in finally)
    # one worker: as compose runs it (``reelpolicy-registry serve``: uvloop, httptools,
    # start-up objects frozen); more: uvicorn's process manager
    command = ["-m", "reelpolicy_registry.cli", "serve"]
    if server_workers > 1:
        options = (
            "--factory reelpolicy_registry.main:create_app --host 127.0.0.1 --loop uvloop"
            " --http httptools --no-access-log --log-level warning"
        )
        command = ["-m", "uvicorn", *options.split(), "--port", str(port)]
        command += ["--workers", str(server_workers)]
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        *command,
        env=env,
        stdout=server_log,
        stderr=server_log,
    )
    try:
        await asyncio.to_thread(wait_for_port, "127.0.0.1", port, timeout=30)
        key = await operator_key(dsn)
        rng, regions = random.Random(seed), RegionPicker()  # new credit codes each run
        bodies = [
            json.dumps(
                {k: v for k, v in enterprise_row(rng, regions, n).items() if k != "type"}
            ).encode()
            for n in range(int(rate * seconds))
        ]
        head = (
            "POST /v1/enterprises HTTP/1.1\r\nHost: bench\r\n"
            f"Authorization: Bearer {key}\r\nContent-Type: application/json\r\n"
        ).encode()
        latencies: list[float] = []
        failures = 0
        t0 = time.perf_counter() + 0.5
        schedule = iter([(t0 + i / rate, body) for i, body in enumerate(bodies)])

        async def sender() -> None:
            # Latency counts from the intended send time, so a slow server's queueing
            # shows (no coordinated omission); a late load generator shows too.
            nonlocal failures
            connection = await Connection.open(f"http://127.0.0.1:{port}")
            try:
                for due, body in schedule:
                    await asyncio.sleep(max(0.0, due - time.perf_counter()))
                    status = await connection.request(head, body)
                    latencies.append(time.perf_counter() - due)
                    failures += status != 201
            finally:
                connection.close()

        await asyncio.gather(*(sender() for _ in range(CONNECTIONS)))
        latencies.sort()
        p50 = latencies[len(latencies) // 2] * 1000
        p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
        print(
            f"POST /v1/enterprises {when}, at {rate:.0f} req/s for {seconds:.0f} s"
            f" ({server_workers} server process(es),"
            f" {CONNECTIONS} keep-alive connections, pre-encoded requests):"
            f" {len(latencies)} requests, {failures} failed, p50 {p50:.1f} ms, p99 {p99:.1f} ms"
        )
    finally:
        if server.returncode is None:
            server.terminate()
        await asyncio.wait_for(server.wait(), timeout=30)
        server_log.close()


async def tune_for_bulk_writes(admin_dsn: str) -> None:
    """Room for the import's WAL (about 4 GB for 1.1M rows and their events) between
    checkpoints, as a server sized for bulk loads would have; durability is unchanged."""
    conn = await connect(admin_dsn)
    try:
        await conn.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
        await conn.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    print("postgres: max_wal_size 8GB, checkpoint_timeout 30min (fsync and synchronous_commit on)")


async def checkpoint(dsn: str) -> None:
    """Write out what the import left dirty. Right after a bulk load the checkpoint and
    the kernel's writeback of gigabytes share the disk with every commit's WAL flush;
    the second latency run shows the registry once that is done."""
    conn = await connect(dsn)
    try:
        started = time.perf_counter()
        await conn.execute("CHECKPOINT")
        print(f"checkpoint: {time.perf_counter() - started:.1f} s")
    finally:
        await conn.close()


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="registry-bench-"))
    print(f"work dir (server log; the data and the database with --keep): {work}")
    postgres = EmbeddedPostgres.start(work / "pg")
    broker = EmbeddedBroker.start()
    try:
        await tune_for_bulk_writes(postgres.uri())
        await ensure_database(postgres.uri(), "bench", fresh=True)
        dsn = database_uri(postgres.uri(), "bench")
        conn = await connect(dsn)
        try:
            await migrate_registry(conn)
        finally:
            await conn.close()
        await ensure_topics(bootstrap_servers=broker.bootstrap_servers, names=[topics.REGISTRY])
        data = work / "data.jsonl"
        started = time.perf_counter()
        rows = write_data(data, args.enterprises, args.productions, args.seed)
        print(f"generate: {rows:,} rows in {time.perf_counter() - started:.1f} s")
        await import_and_relay(
            dsn,
            broker.bootstrap_servers,
            data,
            args.chunk_rows,
            args.import_writers,
            args.validate_processes,
            work / "pg",
        )
        if args.rate > 0:
            for settled in (False, True):
                if settled:  # what the checkpointer does anyway, within checkpoint_timeout
                    await checkpoint(dsn)
                await post_latency(
                    dsn,
                    broker.bootstrap_servers,
                    args.rate,
                    args.seconds,
                    args.workers,
                    work / "server.log",
                    when="after a checkpoint" if settled else "right after the import",
                    seed=100 if settled else 99,
                )
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"peak memory (this process): {peak:,.0f} MiB")
        if args.validate_processes:
            worker = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
            print(f"peak memory (largest child process, servers included): {worker:,.0f} MiB")
    finally:
        broker.stop()
        postgres.stop()
        if not args.keep:  # about 4 GB after a full run
            shutil.rmtree(work / "pg", ignore_errors=True)
            (work / "data.jsonl").unlink(missing_ok=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--enterprises", type=int, default=100_000)
    parser.add_argument("--productions", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument(
        "--import-writers", type=int, default=2, help="chunks written at once (IMPORT_WRITERS)"
    )
    parser.add_argument(
        "--validate-processes",
        type=int,
        default=1,
        help="worker processes validating rows (IMPORT_PROCESSES; 0: a thread)",
    )
    parser.add_argument("--rate", type=float, default=200, help="POST req/s (0: skip)")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument(
        "--keep", action="store_true", help="keep the generated data and the database"
    )
    asyncio.run(main(parser.parse_args()))
