"""The notify unit of work: one transaction over its repositories."""

from __future__ import annotations

import asyncpg

from reelpolicy_common.uow import PostgresUnitOfWork
from reelpolicy_notify.adapters.deliveries import PostgresDeliveryRepository
from reelpolicy_notify.adapters.projections import PostgresProjectionRepository
from reelpolicy_notify.adapters.secret_box import SecretBox
from reelpolicy_notify.adapters.subscriptions import PostgresSubscriptionRepository


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
