"""The rules unit of work on asyncpg: projection + results repositories, outbox."""

from __future__ import annotations

from reelpolicy_common.consumer import record_processed
from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_rules.adapters.projection import PostgresProjection
from reelpolicy_rules.adapters.results import PostgresResults


class RulesUnitOfWork(PostgresUnitOfWork):
    projection: PostgresProjection
    results: PostgresResults

    async def __aenter__(self) -> RulesUnitOfWork:
        await super().__aenter__()
        self.projection = PostgresProjection(self.conn)
        self.results = PostgresResults(self.conn)
        return self

    async def first_time(self, *, consumer: str, event_id: object) -> bool:
        """Record the event as processed; False if it already was (idempotency)."""
        import uuid

        assert isinstance(event_id, uuid.UUID)
        return await record_processed(self.conn, consumer=consumer, event_id=event_id)
