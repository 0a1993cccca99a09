"""Turning alerts into deliveries inside the caller's transaction (idempotently)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from reelpolicy_contracts.ids import derived_id
from reelpolicy_notify.domain.alerts import Alert
from reelpolicy_notify.domain.records import NewDelivery, Subscription
from reelpolicy_notify.ports import UnitOfWork


@dataclass(frozen=True)
class AlertTarget:
    """An alert for one subscription; ``traceparent`` is the span the delivery continues."""

    subscription: Subscription
    alert: Alert
    traceparent: str | None = None


def delivery_id(subscription_id: uuid.UUID, alert: Alert) -> uuid.UUID:
    """The delivery's id, which is its ``webhook-id``: derived from the subscription and
    the alert key (and the alert's time, so ids stay roughly time-ordered in the index),
    so a notify database restored from an older backup that reads an event again
    delivers it under the webhook-id it had, which the receiver recognises, and not as
    a new message."""
    millis = int(alert.occurred_at.timestamp() * 1000)
    return derived_id(str(subscription_id), alert.alert_key, prefix=millis)


async def file_alerts(work: UnitOfWork, targets: Sequence[AlertTarget], *, now: datetime) -> int:
    """Create one delivery per (subscription, alert) not created before; digest
    subscriptions get the alert filed under their open digest instead. Returns how many."""
    immediate: list[NewDelivery] = []
    filed = 0
    for target in targets:
        subscription, alert = target.subscription, target.alert
        delivery = NewDelivery(
            id=delivery_id(subscription.id, alert),
            subscription_id=subscription.id,
            enterprise_id=subscription.enterprise_id,  # owner: null for platform-wide
            alert_key=alert.alert_key,
            event_type=alert.type,
            body=alert.body(),
            occurred_at=alert.occurred_at,
            traceparent=target.traceparent,
        )
        if subscription.digest_window_seconds:
            filed += await work.deliveries.add_to_digest(
                delivery, window_seconds=subscription.digest_window_seconds, now=now
            )
        else:
            immediate.append(delivery)
    return filed + await work.deliveries.add_many(immediate)
