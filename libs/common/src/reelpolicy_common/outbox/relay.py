"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Ordering: rows are spread over lanes by key hash. A relay publishes a lane only
while it holds that lane's transaction-scoped advisory lock, so two relays (two
replicas) never publish the same lane at once, and within a lane rows go out in
``seq`` order. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` inside that
transaction and marked sent in it, so a relay that dies mid-batch leaves the rows
unsent and re-claimable (a row may then be published twice; consumers dedupe by
event id). A broker outage rolls the batch back and the relay retries with
exponential backoff: events wait, then flow, none lost, none reordered per key.

The relay sleeps on ``LISTEN reelpolicy_outbox`` (sent by the writers' commits);
a long safety timeout covers a lost notification or a dropped listen connection.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from typing import Any, Protocol

import asyncpg

from reelpolicy_common.db.listen import NotifyListener
from reelpolicy_common.outbox.store import DEFAULT_LANES, NOTIFY_CHANNEL, OutboxRecord

log = logging.getLogger(__name__)

_LANE_LOCK_CLASS = 0x5EE1


class RecordPublisher(Protocol):
    """Publishes records in the given order and returns only when all are acknowledged."""

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None: ...

    async def refresh(self) -> None:
        """Forget what is known about the broker (after a failure), re-learn it now."""


class OutboxMetrics(Protocol):
    def observe(self, *, published: int, backlog: int, oldest_age_seconds: float) -> None: ...


class OutboxRelay:
    def __init__(
        self,
        *,
        pool: asyncpg.Pool,
        publisher: RecordPublisher,
        batch_size: int = 1000,
        idle_timeout: float = 30.0,
        max_backoff: float = 30.0,
        retention_seconds: float = 3600.0,
        concurrency: int = 1,
        metrics: OutboxMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_timeout = idle_timeout
        self._max_backoff = max_backoff
        self._retention_seconds = retention_seconds
        self._concurrency = concurrency
        self._metrics = metrics
        self._broker_suspect = False
        self._after: dict[int, int] = {}  # lane -> last seq published (see drain)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener = NotifyListener(pool, NOTIFY_CHANNEL, self._wake)
        self._last_housekeeping = 0.0

    def wake(self, *_: Any) -> None:
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish its current batch and return."""
        self._stopping.set()
        self._wake.set()

    async def run(self) -> None:
        """Relay until :meth:`stop`; survives broker and database outages."""
        backoff = 0.1
        while not self._stopping.is_set():
            try:
                await self._listener.ensure()
                if self._broker_suspect:
                    await self._publisher.refresh()
                    self._broker_suspect = False
                self._wake.clear()
                published = await self.drain()
                backoff = 0.1
                if published == 0:
                    await self._sleep(self._idle_timeout, wake_early=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("outbox relay: %s; retrying in %.1fs", exc, backoff)
                self._broker_suspect = True
                await self._listener.drop()
                await self._sleep(backoff, wake_early=False)
                backoff = min(backoff * 2, self._max_backoff)
        await self._listener.drop()

    async def drain(self) -> int:
        """Publish every pending row this relay can lock; return how many it published.

        Each lane is read from just after the last row this relay published in it
        (``_after``): rows marked sent stay in the pending index until vacuum, and
        reading a lane from its start would step over all of them again for every
        batch. A row that commits late with a smaller ``seq`` is not lost: when no
        lane has rows past its cursor, the cursors are reset and the lanes read
        once more from the start before the drain ends.
        """
        total = 0
        rescanned = False
        while not self._stopping.is_set():
            async with self._pool.acquire() as conn:
                # One index probe per lane, from its cursor.
                lanes = await conn.fetch(
                    "SELECT l.n AS lane FROM generate_series(0, $1 - 1) AS l(n) WHERE EXISTS"
                    " (SELECT 1 FROM outbox o WHERE o.lane = l.n AND o.sent_at IS NULL"
                    " AND o.seq > ($2::bigint[])[l.n + 1])",
                    DEFAULT_LANES,
                    [self._after.get(lane, 0) for lane in range(DEFAULT_LANES)],
                )
            progressed = sum(await self._publish_lanes([row["lane"] for row in lanes]))
            total += progressed
            if progressed:
                rescanned = False
                continue
            if rescanned or not self._after:
                break
            self._after.clear()  # once more from the start: late commits, other relays
            rescanned = True
        await self._housekeeping(total)
        return total

    async def _publish_lanes(self, lanes: list[int]) -> list[int]:
        """Publish one batch of each lane, up to ``concurrency`` lanes at a time.

        Lanes are independent (order is only promised within a key, so within a
        lane); publishing several at once overlaps one lane's database work with
        another's wait for broker acknowledgements. A failure cancels the others:
        their transactions roll back and their rows are published again later.
        """
        limit = asyncio.Semaphore(self._concurrency)

        async def one(lane: int) -> int:
            async with limit:
                return await self._publish_lane(lane)

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(lane)) for lane in lanes]
        except ExceptionGroup as failed:  # report the cause, not the group
            raise failed.exceptions[0] from failed
        return [task.result() for task in tasks]

    async def _publish_lane(self, lane: int) -> int:
        """Publish one batch of ``lane`` (if no other relay holds it), in order."""
        async with self._pool.acquire() as conn, conn.transaction():
            locked = await conn.fetchval(
                "SELECT pg_try_advisory_xact_lock($1, $2)", _LANE_LOCK_CLASS, lane
            )
            if not locked:
                return 0
            rows = await conn.fetch(
                "SELECT seq, topic, key, value, headers FROM outbox"
                " WHERE lane = $1 AND sent_at IS NULL AND seq > $3 ORDER BY seq LIMIT $2"
                " FOR UPDATE SKIP LOCKED",
                lane,
                self._batch_size,
                self._after.get(lane, 0),
            )
            if not rows:
                return 0
            records = [
                OutboxRecord(r["seq"], r["topic"], r["key"], r["value"], r["headers"] or {})
                for r in rows
            ]
            await self._publisher.publish_batch(records)
            await conn.execute(
                "UPDATE outbox SET sent_at = now() WHERE seq = ANY($1::bigint[])",
                [r.seq for r in records],
            )
        self._after[lane] = records[-1].seq  # only once committed
        return len(records)

    async def _housekeeping(self, published: int) -> None:
        now = time.monotonic()
        if published == 0 and now - self._last_housekeeping < 5.0:
            return
        self._last_housekeeping = now
        async with self._pool.acquire() as conn:
            await conn.execute(
                "DELETE FROM outbox WHERE sent_at < now() - make_interval(secs => $1)",
                self._retention_seconds,
            )
            if self._metrics is not None:
                row = await conn.fetchrow(
                    "SELECT count(*) AS n, coalesce(extract(epoch FROM now() - min(created_at)),"
                    " 0)::float8 AS age FROM outbox WHERE sent_at IS NULL"
                )
                assert row is not None
                self._metrics.observe(
                    published=published, backlog=row["n"], oldest_age_seconds=row["age"]
                )

    async def _sleep(self, seconds: float, *, wake_early: bool) -> None:
        waiter = self._wake if wake_early else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)
