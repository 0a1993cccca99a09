"""Turning alerts into deliveries inside the caller's transaction (idempotently)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from reelpolicy_notify.domain.alerts import Alert
from reelpolicy_notify.domain.records import NewDelivery, Subscription
from reelpolicy_notify.ports import UnitOfWork


async def file_alerts(
    work: UnitOfWork,
    targets: Sequence[tuple[Subscription, str | None, Alert]],
    *,
    traceparent: str | None,
    now: datetime,
) -> int:
    """Create one delivery per (subscription, alert) not created before; digest
    subscriptions get the alert filed under their open digest instead. Returns how many."""
    immediate: list[NewDelivery] = []
    filed = 0
    for subscription, _target_enterprise, alert in targets:
        delivery = NewDelivery(
            subscription_id=subscription.id,
            enterprise_id=subscription.enterprise_id,  # owner: null for platform-wide
            alert_key=alert.alert_key,
            event_type=alert.type,
            body=alert.body(),
            occurred_at=alert.occurred_at,
            traceparent=traceparent,
        )
        if subscription.digest_window_seconds:
            filed += await work.deliveries.add_to_digest(
                delivery, window_seconds=subscription.digest_window_seconds, now=now
            )
        else:
            immediate.append(delivery)
    return filed + await work.deliveries.add_many(immediate)
