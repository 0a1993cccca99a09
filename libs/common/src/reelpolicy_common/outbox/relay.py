"""The outbox relay: publishes committed outbox rows to Kafka, in order per key.

Ordering: rows are spread over lanes by key hash. A relay publishes a lane only
while it holds that lane's transaction-scoped advisory lock, so two relays (two
replicas) never publish the same lane at once, and within a lane rows go out in
``seq`` order. Rows are claimed with ``FOR UPDATE SKIP LOCKED`` inside that
transaction and marked sent in it (kept ``retention_seconds``, so a fresh in-memory
broker can be refilled from them; with no retention they are deleted instead), so a
relay that dies mid-batch leaves the rows
unsent and re-claimable (a row may then be published twice; consumers dedupe by
event id); for the same reason the marks are committed without waiting for the WAL
flush (``synchronous_commit = off``, for this transaction only). A broker outage
rolls the batch back and the relay retries with exponential backoff: events wait,
then flow, none lost, none reordered per key.

A row the broker refuses for good (:class:`PermanentPublishError`: too large, an
invalid topic, a corrupt record) never stalls the rows behind it: the relay finds it
by publishing the batch again in halves, moves it to ``outbox_quarantine`` (with the
error) in the transaction that marks the rest sent, logs and counts it, and goes on.
Later rows of the same key are still published: a key's events then miss that one
(an operator may retry it with ``reelpolicy-<svc> outbox retry``, after the later
ones), which is better than every later event of the service waiting forever.

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

_RELAXED = "WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true))"
MARK_SENT = (
    _RELAXED + " UPDATE outbox SET sent_at = now() FROM relaxed WHERE seq = ANY($1::bigint[])"
)
"""Mark rows sent, and let this transaction commit without waiting for the WAL flush."""
DELETE_SENT = _RELAXED + " DELETE FROM outbox USING relaxed WHERE seq = ANY($1::bigint[])"
"""Delete rows once published (no retention), with the same relaxed commit."""
QUARANTINE = (
    "WITH moved AS (DELETE FROM outbox o USING unnest($1::bigint[], $2::text[]) AS q(seq, error)"
    " WHERE o.seq = q.seq RETURNING o.*, q.error)"
    " INSERT INTO outbox_quarantine (seq, event_id, topic, key, lane, event_type, value,"
    " headers, created_at, error)"
    " SELECT seq, event_id, topic, key, lane, event_type, value, headers, created_at, error"
    " FROM moved RETURNING seq, event_id, topic, key, error"
)
"""Move rows (seq, error) from the outbox into the quarantine."""


class PermanentPublishError(Exception):
    """The broker refused a record of the batch for good: sending it again cannot
    succeed (too large, invalid topic, corrupt record). A :class:`RecordPublisher`
    raises it (any other exception counts as transient: the batch is retried)."""


class RecordPublisher(Protocol):
    """Publishes records in the given order and returns only when all are acknowledged."""

    async def publish_batch(self, records: Sequence[OutboxRecord]) -> None: ...

    async def refresh(self) -> None:
        """Forget what is known about the broker (after a failure), re-learn it now."""


class OutboxMetrics(Protocol):
    def observe(self, *, published: int, backlog: int, oldest_age_seconds: float) -> None: ...

    def quarantined(self, *, moved: int, held: int | None = None) -> None:
        """Count rows just moved to the quarantine; ``held``: how many it holds now."""


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
        rescan_seconds: float = 1.0,
        metrics: OutboxMetrics | None = None,
    ) -> None:
        self._pool = pool
        self._publisher = publisher
        self._batch_size = batch_size
        self._idle_timeout = idle_timeout
        self._max_backoff = max_backoff
        self._retention_seconds = retention_seconds
        # without retention a published row is deleted: a DELETE only marks the old
        # tuple, where the UPDATE writes a whole new one and its index entries (several
        # times the work) and leaves the retention DELETE for later
        self._done_sql = MARK_SENT if retention_seconds > 0 else DELETE_SENT
        self._concurrency = concurrency
        self._rescan_seconds = rescan_seconds
        self._last_rescan = time.monotonic()
        self._metrics = metrics
        self._broker_suspect = False
        self._after: dict[int, int] = {}  # lane -> last seq published (see drain)
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._listener = NotifyListener(pool, NOTIFY_CHANNEL, self._wake)
        self._last_housekeeping = 0.0
        self._unreported = 0  # published since the metrics were last told

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
                _, more = await self._drain_once()
                backoff = 0.1
                if not more:
                    # returns at once if a commit notified meanwhile
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
        """Publish every pending row this relay can lock; return how many it published."""
        total = 0
        while not self._stopping.is_set():
            published, more = await self._drain_once()
            total += published
            if not more:
                break
        return total

    async def _drain_once(self) -> tuple[int, bool]:
        """One pass over the lanes; returns (rows published, whether a lane had more).

        Each lane is read from just after the last row this relay published in it
        (``_after``): rows marked sent stay in the pending index until vacuum, and
        reading a lane from its start would step over all of them again for every
        batch. A row that commits late with a smaller ``seq`` is not lost: the lanes
        are read from the start again when a pass finds nothing past the cursors,
        and at least every ``rescan_seconds`` (under steady traffic every pass finds
        something, so without that a late row would wait until the traffic stops).
        """
        now = time.monotonic()
        if self._after and now - self._last_rescan >= self._rescan_seconds:
            self._after.clear()  # from the start: rows committed late behind the cursors
            self._last_rescan = now
        published, more = await self._publish_lanes(list(range(DEFAULT_LANES)))
        if published == 0 and self._after:
            self._after.clear()  # once more from the start: late commits, other relays
            self._last_rescan = now
            published, more = await self._publish_lanes(list(range(DEFAULT_LANES)))
        self._unreported += published
        await self._housekeeping()
        return published, more

    async def _publish_lanes(self, lanes: list[int]) -> tuple[int, bool]:
        """Publish a batch of each lane: ``concurrency`` groups of lanes, one
        transaction (and one publish) per group.

        Lanes are independent (order is only promised within a key, so within a
        lane); publishing groups at once overlaps one group's database work with
        another's wait for broker acknowledgements. A group that fails rolls back
        alone (its rows are published again later); the others finish and commit
        their batches, then the first failure is raised.
        """
        groups = [lanes[i :: self._concurrency] for i in range(min(self._concurrency, len(lanes)))]
        if len(groups) == 1:
            return await self._publish_group(groups[0])
        results = await asyncio.gather(
            *(self._publish_group(g) for g in groups), return_exceptions=True
        )
        done = [r for r in results if not isinstance(r, BaseException)]
        published = sum(n for n, _ in done)
        for result in results:
            if isinstance(result, BaseException):
                self._unreported += published  # the groups that did commit
                raise result
        return published, any(more for _, more in done)

    async def _publish_group(self, lanes: list[int]) -> tuple[int, bool]:
        """Publish up to a batch of each of ``lanes`` that no other relay holds, in order."""
        async with self._pool.acquire() as conn, conn.transaction():
            # the lane locks first, so rows of a lane another relay holds are never
            # row-locked here (it would skip them and publish past them)
            locked = await conn.fetchval(
                "SELECT coalesce(array_agg(l), '{}') FROM unnest($2::int[]) AS l"
                " WHERE pg_try_advisory_xact_lock($1, l)",
                _LANE_LOCK_CLASS,
                lanes,
            )
            if not locked:
                return 0, False
            rows = await conn.fetch(
                "SELECT o.seq, o.lane, o.topic, o.key, o.value, o.headers"
                " FROM unnest($1::int[], $2::bigint[]) AS l(lane, after)"
                " CROSS JOIN LATERAL (SELECT * FROM outbox o WHERE o.lane = l.lane"
                "   AND o.sent_at IS NULL AND o.seq > l.after ORDER BY o.seq LIMIT $3"
                "   FOR UPDATE SKIP LOCKED) o ORDER BY o.seq",
                locked,
                [self._after.get(lane, 0) for lane in locked],
                self._batch_size,
            )
            if not rows:
                return 0, False
            records = [
                OutboxRecord(r["seq"], r["topic"], r["key"], r["value"], r["headers"] or {})
                for r in rows
            ]
            refused = await self._publish_isolating(records)
            moved = []
            if refused:
                moved = await conn.fetch(QUARANTINE, list(refused), list(refused.values()))
            # Marking (or deleting) rows sent need not wait for the WAL flush: if the
            # database loses this commit, the rows are published again, which consumers
            # already tolerate (they dedupe by event id). It saves a flush wait per
            # batch. The setting (transaction-local, like SET LOCAL) rides on the
            # statement itself, so it costs no round trip of its own, and a pass that
            # finds nothing none.
            await conn.execute(self._done_sql, [r.seq for r in records if r.seq not in refused])
        if moved:
            self._report_quarantined(moved)
        counts: dict[int, int] = {}
        for r in rows:  # only once committed
            self._after[r["lane"]] = r["seq"]
            counts[r["lane"]] = counts.get(r["lane"], 0) + 1
        return len(rows) - len(refused), max(counts.values()) >= self._batch_size

    async def _publish_isolating(self, records: Sequence[OutboxRecord]) -> dict[int, str]:
        """Publish ``records`` in order; returns the rows refused for good (seq -> error).

        A permanent refusal of the batch is narrowed down by publishing it again in
        halves, in order (each half acknowledged before the next starts), down to
        the single records the broker refuses; the rest are published. Records the
        failed attempt delivered already go out once more (consumers dedupe).
        """
        try:
            await self._publisher.publish_batch(records)
            return {}
        except PermanentPublishError as exc:
            if len(records) == 1:
                return {records[0].seq: str(exc)}
        half = len(records) // 2
        refused = await self._publish_isolating(records[:half])
        refused.update(await self._publish_isolating(records[half:]))
        return refused

    def _report_quarantined(self, moved: Sequence[asyncpg.Record]) -> None:
        for row in moved:
            log.warning(
                "outbox relay: quarantined row seq=%d event_id=%s topic=%s key=%s: %s",
                row["seq"],
                row["event_id"],
                row["topic"],
                row["key"],
                row["error"],
            )
        if self._metrics is not None:
            self._metrics.quarantined(moved=len(moved))

    async def _housekeeping(self) -> None:
        """At most every 5 s: delete rows sent long ago (none are kept without
        retention), report what was published."""
        now = time.monotonic()
        if now - self._last_housekeeping < 5.0:
            return
        self._last_housekeeping = now
        published, self._unreported = self._unreported, 0
        async with self._pool.acquire() as conn:
            if self._retention_seconds > 0:
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
                held = await conn.fetchval("SELECT count(*) FROM outbox_quarantine")
                self._metrics.quarantined(moved=0, held=held)

    async def _sleep(self, seconds: float, *, wake_early: bool) -> None:
        waiter = self._wake if wake_early else self._stopping
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(waiter.wait(), timeout=seconds)
