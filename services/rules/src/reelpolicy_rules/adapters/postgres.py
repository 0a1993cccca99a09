"""The rules unit of work on asyncpg: projection + results repositories, outbox."""

from __future__ import annotations

import uuid

from reelpolicy_common.consumer import record_processed, was_processed
from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_rules.adapters.projection import PROJECTION_LOCK, PostgresProjection
from reelpolicy_rules.adapters.results import PostgresResults


class RulesUnitOfWork(PostgresUnitOfWork):
    projection: PostgresProjection
    results: PostgresResults

    async def __aenter__(self) -> RulesUnitOfWork:
        await super().__aenter__()
        self.projection = PostgresProjection(self.conn)
        self.results = PostgresResults(self.conn)
        return self

    async def hold_projection(self) -> None:
        """The exclusive projection lock (as ``projection.lock_all``), held across this
        unit of work's commits until it closes."""
        await self.lock_across_commits(PROJECTION_LOCK, 0)

    async def processed(self, *, consumer: str, event_id: uuid.UUID) -> bool:
        """Whether the event was recorded as processed (records nothing)."""
        return await was_processed(self.conn, consumer=consumer, event_id=event_id)

    async def first_time(self, *, consumer: str, event_id: object) -> bool:
        """Record the event as processed; False if it already was (idempotency)."""
        assert isinstance(event_id, uuid.UUID)
        return await record_processed(self.conn, consumer=consumer, event_id=event_id)
