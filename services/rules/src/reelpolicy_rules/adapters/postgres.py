"""The rules unit of work on asyncpg: projection + results repositories, outbox."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from reelpolicy_common.auth import apply_api_key_changed
from reelpolicy_common.consumer import record_processed, record_processed_many, was_processed
from reelpolicy_common.outbox.store import EncodedEvent, enqueue_encoded, lane_of
from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_rules.adapters.projection import PROJECTION_LOCK, PostgresProjectionRepository
from reelpolicy_rules.adapters.results import PostgresResultRepository


class RulesUnitOfWork(PostgresUnitOfWork):
    projection: PostgresProjectionRepository
    results: PostgresResultRepository

    async def __aenter__(self) -> RulesUnitOfWork:
        await super().__aenter__()
        self.projection = PostgresProjectionRepository(self.conn)
        self.results = PostgresResultRepository(self.conn)
        return self

    async def read_only_snapshot(self) -> None:
        """READ ONLY REPEATABLE READ for this transaction (its first statement): one
        snapshot for every later read, and no lock."""
        await self.conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")

    async def hold_projection(self) -> None:
        """The exclusive projection lock (as ``projection.lock_all``), held across this
        unit of work's commits until it closes."""
        await self.lock_across_commits(PROJECTION_LOCK, 0)

    async def processed(self, *, consumer: str, event_id: uuid.UUID) -> bool:
        """Whether the event was recorded as processed (records nothing)."""
        return await was_processed(self.conn, consumer=consumer, event_id=event_id)

    async def first_time(self, *, consumer: str, event_id: uuid.UUID) -> bool:
        """Record the event as processed; False if it already was (idempotency)."""
        return await record_processed(self.conn, consumer=consumer, event_id=event_id)

    async def first_times(self, *, consumer: str, event_ids: Sequence[uuid.UUID]) -> set[uuid.UUID]:
        """Record the events as processed; returns those that were not yet."""
        return await record_processed_many(self.conn, consumer=consumer, event_ids=event_ids)

    async def apply_api_key_changed(self, payload: dict[str, object]) -> None:
        await apply_api_key_changed(self.conn, payload)

    async def publish_encoded(
        self, topic: str, events: Iterable[EncodedEvent], *, count: int
    ) -> None:
        await enqueue_encoded(self.conn, topic=topic, events=events, count=count)

    async def drop_unsent(self, topic: str, keys: Sequence[str]) -> int:
        """Delete the outbox rows of ``topic`` with these keys that are not published yet;
        returns how many."""
        dropped = await self.conn.fetchval(
            # the lanes let the partial index of unsent rows find them
            "WITH dropped AS (DELETE FROM outbox WHERE sent_at IS NULL AND topic = $1"
            " AND key = ANY($2::text[]) AND lane = ANY($3::int[]) RETURNING 1)"
            " SELECT count(*) FROM dropped",
            topic,
            list(keys),
            sorted({lane_of(key) for key in keys}),
        )
        return int(dropped)

    async def unsent_event_ids(self, topic: str) -> set[uuid.UUID]:
        """The event ids of the outbox rows of ``topic`` not published yet."""
        rows = await self.conn.fetch(
            "SELECT event_id FROM outbox WHERE sent_at IS NULL AND topic = $1", topic
        )
        return {r["event_id"] for r in rows}

    async def drop_unsent_events(self, topic: str, event_ids: Sequence[uuid.UUID]) -> int:
        """Delete the outbox rows of ``topic`` with these event ids that are not published
        yet; returns how many."""
        dropped = await self.conn.fetchval(
            "WITH dropped AS (DELETE FROM outbox WHERE sent_at IS NULL AND topic = $1"
            " AND event_id = ANY($2::uuid[]) RETURNING 1) SELECT count(*) FROM dropped",
            topic,
            list(event_ids),
        )
        return int(dropped)
