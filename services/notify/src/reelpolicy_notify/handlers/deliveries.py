"""Delivery use cases of the API: list with attempts, read one, replay one or all failed
since T (making an attempt is ``delivery_attempts``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from reelpolicy_common.auth import Principal
from reelpolicy_notify.domain.records import Delivery
from reelpolicy_notify.ports import UowFactory


class DeliveryNotFoundError(Exception):
    pass


class NotReplayableError(Exception):
    pass


async def list_deliveries(
    *,
    uow: UowFactory,
    principal: Principal,
    subscription_id: uuid.UUID | None,
    status: str | None,
    since: datetime | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Delivery]:
    async with uow() as work:
        return await work.deliveries.page(
            enterprise_id=principal.enterprise_id,
            everyone=principal.is_operator,
            subscription_id=subscription_id,
            status=status,
            since=since,
            after=after,
            limit=limit,
        )


async def get_delivery(
    *, uow: UowFactory, principal: Principal, delivery_id: uuid.UUID
) -> Delivery:
    async with uow() as work:
        found = await work.deliveries.get(delivery_id)
    if found is None or (not principal.can_see(found.enterprise_id) and not principal.is_operator):
        raise DeliveryNotFoundError(str(delivery_id))
    return found


async def replay_delivery(
    *, uow: UowFactory, principal: Principal, delivery_id: uuid.UUID
) -> Delivery:
    """Queue a failed delivery again: same delivery id, so the same ``webhook-id``."""
    async with uow() as work:
        found = await work.deliveries.get(delivery_id)
        if found is None or not (principal.is_operator or principal.can_see(found.enterprise_id)):
            raise DeliveryNotFoundError(str(delivery_id))
        if not await work.deliveries.replay(delivery_id):
            raise NotReplayableError(f"delivery {delivery_id} is {found.status}, not failed")
        await work.commit()
    return await get_delivery(uow=uow, principal=principal, delivery_id=delivery_id)


async def replay_failed_since(*, uow: UowFactory, principal: Principal, since: datetime) -> int:
    """Queue again every failed delivery the caller can see that failed at or after ``since``."""
    async with uow() as work:
        count = await work.deliveries.replay_failed_since(
            since, enterprise_id=principal.enterprise_id, everyone=principal.is_operator
        )
        await work.commit()
    return count
