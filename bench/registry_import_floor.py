"""Registry import, piece by piece: the CPU each row's unavoidable work costs alone.

    .venv/bin/python bench/registry_import_floor.py [--chunks 5] [--chunk-rows 20000]

``bench/registry_import.py`` measures the whole import (and prints its CPU per row by
process). This one runs the import's pieces one at a time, nothing else running, on
generated productions of stored enterprises, with the import's own validation and
outbox writer, so their sum is the least CPU a row can cost with this design:

- validating and serializing a row (``import_validation.validate_chunk``, pydantic);
- PostgreSQL storing the row: a plain ``COPY`` into ``productions`` (heap, indexes,
  the foreign key check, ``jsonb`` parsing, WAL), the cheapest way in (the import
  itself stages rows, then inserts or upserts them, which costs PostgreSQL more);
- PostgreSQL storing the row's event (``production_event``, encoded beforehand): its
  outbox row, by ``COPY`` (``outbox.store.enqueue_encoded``);
- this process encoding both ``COPY`` streams.

It prints each piece's median over ``--chunks`` chunks (CPU of this process, or of the
PostgreSQL backend from ``/proc``) and what the sum allows on this machine's cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.outbox.store import EncodedEvent, enqueue_encoded
from reelpolicy_contracts import topics
from reelpolicy_contracts.ids import uuid7_text
from reelpolicy_datagen.registry_rows import generate_rows
from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, ensure_database
from reelpolicy_registry.adapters.import_staging import upsert_enterprises
from reelpolicy_registry.domain.events import production_event
from reelpolicy_registry.domain.import_validation import validate_chunk, with_enterprise_id
from reelpolicy_registry.domain.records import StoredProduction
from reelpolicy_registry.ports import ProductionStage
from support import migrate_registry, own_cpu_seconds, process_cpu_seconds


async def measured(backend: int, work: Awaitable[object]) -> tuple[float, float]:
    """(this process's, the PostgreSQL backend's) CPU seconds for ``work`` (a coroutine
    not started yet)."""
    own, server = own_cpu_seconds(), process_cpu_seconds([backend])
    await work
    return own_cpu_seconds() - own, process_cpu_seconds([backend]) - server


async def copy_productions(conn: asyncpg.Connection, rows: list[ProductionStage]) -> None:
    await conn.copy_records_to_table(
        "productions",
        records=rows,  # attributes as bytes: JSON, sent as it is (db.pool)
        columns=["id", "enterprise_id", "external_id", "import_key", "attributes"],
    )


def encoded_events(rows: list[ProductionStage]) -> list[EncodedEvent]:
    """The ``production.upserted`` event of each new row, as the API path builds it."""
    now, events = datetime.now(UTC), []
    for ident, _, _, _, attributes in rows:
        stored = StoredProduction(ident, 1, json.loads(attributes), now, now)
        envelope = production_event(stored)
        events.append(
            EncodedEvent(envelope.event_id, envelope.key, envelope.type.value, envelope.to_bytes())
        )
    return events


async def main(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="registry-floor-"))
    postgres = EmbeddedPostgres.start(work / "pg")
    try:
        await ensure_database(postgres.uri(), "floor", fresh=True)
        pool = await create_pool(database_uri(postgres.uri(), "floor"), max_size=1)
        async with pool.acquire() as conn:
            await migrate_registry(conn)
            total = args.chunks * args.chunk_rows
            rows = list(generate_rows(enterprises=total // 10, productions=total, seed=5))
            texts = {
                kind: [
                    (n, json.dumps(r, ensure_ascii=False))
                    for n, r in enumerate(rows)
                    if r["type"] == kind
                ]
                for kind in ("enterprise", "production")
            }
            enterprises = validate_chunk(texts["enterprise"])
            async with conn.transaction():
                stored = await upsert_enterprises(
                    conn, [(uuid.uuid4(), code, text) for _, code, text in enterprises.enterprises]
                )
            by_code = {r["credit_code"]: r["id"] for r in stored}
            backend = await conn.fetchval("SELECT pg_backend_pid()")
            productions = texts["production"]
            validate_chunk(productions[:1000])  # warm up
            pieces: dict[str, list[float]] = {
                "validation (pydantic, this process)": [],
                "PostgreSQL: the row (COPY into productions)": [],
                "PostgreSQL: its outbox event (COPY)": [],
                "this process: encoding both COPY streams": [],
            }
            for start in range(0, len(productions), args.chunk_rows):
                chunk = productions[start : start + args.chunk_rows]
                began = own_cpu_seconds()
                valid = validate_chunk(chunk).productions
                validation = own_cpu_seconds() - began
                staged: list[ProductionStage] = [
                    (
                        uuid7_text(),
                        by_code[code],
                        external,
                        None,
                        with_enterprise_id(a, by_code[code]),
                    )
                    for _, code, _, external, a in valid
                    if code
                ]
                events = encoded_events(staged)
                async with conn.transaction():
                    row_client, row_server = await measured(backend, copy_productions(conn, staged))
                    event_client, event_server = await measured(
                        backend,
                        enqueue_encoded(
                            conn, topic=topics.REGISTRY, events=events, count=len(events)
                        ),
                    )
                n = len(staged)
                per_row = [validation, row_server, event_server, row_client + event_client]
                for values, seconds in zip(pieces.values(), per_row, strict=True):
                    values.append(seconds / n * 1e6)
        await pool.close()
        print(f"{args.chunks} chunks of {args.chunk_rows:,} productions, one piece at a time:")
        floor = 0.0
        for name, values in pieces.items():
            median = statistics.median(values)
            floor += median
            spread = ", ".join(f"{v:.1f}" for v in values)
            print(f"  {name}: median {median:.1f} µs a row ({spread})")
        cores = os.cpu_count() or 1
        print(
            f"sum: {floor:.1f} µs of CPU a row; with all {cores} cores busy and nothing"
            f" else to do: at most {cores / floor * 1e6:,.0f} rows/s"
        )
    finally:
        postgres.stop()
        shutil.rmtree(work, ignore_errors=True)
    print(f"({time.strftime('%Y-%m-%d %H:%M')})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunks", type=int, default=5)
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    asyncio.run(main(parser.parse_args()))
