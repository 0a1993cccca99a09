"""``processed_events`` is pruned: records older than the retention go, recent ones stay."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from pydantic import ValidationError

from reelpolicy_common.consumer.idempotency import prune_processed, prune_processed_forever
from reelpolicy_common.db.migrations import apply_migrations, common_migrations
from reelpolicy_common.db.pool import create_pool
from reelpolicy_contracts import topics
from reelpolicy_ingest.config import Settings as IngestSettings
from service_harness import eventually, settings_for

pytestmark = pytest.mark.servers

DAY = 86400.0
RETENTION = 35 * DAY


@pytest.fixture
async def pool(fresh_database: str) -> AsyncIterator[asyncpg.Pool]:
    conn = await asyncpg.connect(fresh_database)
    try:
        await apply_migrations(conn, common_migrations())
    finally:
        await conn.close()
    opened = await create_pool(fresh_database, max_size=2)
    try:
        yield opened
    finally:
        await opened.close()


async def add_records(pool: asyncpg.Pool, consumer: str, *, days_ago: float, count: int) -> None:
    await pool.executemany(
        "INSERT INTO processed_events (consumer, event_id, processed_at)"
        " VALUES ($1, $2, now() - make_interval(secs => $3))",
        [(consumer, uuid.uuid4(), days_ago * DAY) for _ in range(count)],
    )


async def ages_left(pool: asyncpg.Pool) -> dict[tuple[str, int], int]:
    rows = await pool.fetch(
        "SELECT consumer, round(extract(epoch FROM now() - processed_at) / 86400)::int AS days,"
        " count(*) AS n FROM processed_events GROUP BY 1, 2"
    )
    return {(r["consumer"], r["days"]): r["n"] for r in rows}


async def test_records_older_than_the_retention_go_and_recent_ones_stay(
    pool: asyncpg.Pool,
) -> None:
    await add_records(pool, "rules.policy", days_ago=40, count=4)
    await add_records(pool, "notify", days_ago=36, count=3)
    await add_records(pool, "notify", days_ago=34, count=2)
    await add_records(pool, "rules.policy", days_ago=0, count=5)

    # Batches of 2: the 7 old rows take several short transactions.
    deleted = await prune_processed(pool, older_than_seconds=RETENTION, batch_rows=2)

    assert deleted == 7
    assert await ages_left(pool) == {("notify", 34): 2, ("rules.policy", 0): 5}
    assert await prune_processed(pool, older_than_seconds=RETENTION) == 0


async def test_the_background_task_prunes_at_once_then_periodically(pool: asyncpg.Pool) -> None:
    await add_records(pool, "ingest.api-keys", days_ago=40, count=3)
    await add_records(pool, "ingest.api-keys", days_ago=1, count=1)
    task = asyncio.create_task(prune_processed_forever(pool, retention_seconds=RETENTION))
    try:

        async def only_the_recent_one_is_left() -> bool:
            return await ages_left(pool) == {("ingest.api-keys", 1): 1}

        await eventually(only_the_recent_one_is_left, timeout=30)
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def test_the_retention_outlasts_the_topics_and_by_default_the_dead_letters() -> None:
    def settings(**overrides: float) -> IngestSettings:
        made: IngestSettings = settings_for(
            IngestSettings,
            database_url="postgresql://unused/unused",
            bootstrap_servers="unused:1",
            **overrides,
        )
        return made

    default = settings().processed_events_retention_seconds
    assert default > topics.DEAD_LETTER_RETENTION_MS / 1000
    with pytest.raises(ValidationError, match="processed_events_retention_seconds"):
        settings(processed_events_retention_seconds=topics.EVENT_RETENTION_MS / 1000 - 1)
