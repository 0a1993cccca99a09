"""The notify unit of work: one transaction over its repositories."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg

from reelpolicy_common.auth import apply_api_key_changed
from reelpolicy_common.consumer import record_processed_many
from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_notify.adapters.delivery_repository import PostgresDeliveryRepository
from reelpolicy_notify.adapters.projection_repository import PostgresProjectionRepository
from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.adapters.subscription_repository import PostgresSubscriptionRepository


class NotifyUnitOfWork(PostgresUnitOfWork):
    subscriptions: PostgresSubscriptionRepository
    deliveries: PostgresDeliveryRepository
    projections: PostgresProjectionRepository

    def __init__(self, pool: asyncpg.Pool, box: SecretBox) -> None:
        super().__init__(pool)
        self._box = box

    async def __aenter__(self) -> NotifyUnitOfWork:
        await super().__aenter__()
        self.subscriptions = PostgresSubscriptionRepository(self.conn, self._box)
        self.deliveries = PostgresDeliveryRepository(self.conn)
        self.projections = PostgresProjectionRepository(self.conn)
        return self

    async def record_processed_many(
        self, *, consumer: str, event_ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        return await record_processed_many(self.conn, consumer=consumer, event_ids=event_ids)

    async def apply_api_key_changed(self, payload: dict[str, object]) -> None:
        await apply_api_key_changed(self.conn, payload)

    async def lock_deadline_scan(self) -> None:
        await self.conn.execute("SELECT pg_advisory_xact_lock(hashtext('notify.deadlines'))")
