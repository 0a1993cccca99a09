"""Subscription use cases: create (with optional backfill), read, change, rotate, test.

Company principals act only on their enterprise's subscriptions: anything else is
reported as not found. Operators act on all, and own the platform-wide ones
(``enterprise_id`` null).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from reelpolicy_common.auth import Principal
from reelpolicy_notify.domain.alerts import TEST_TYPE, eligibility_alert
from reelpolicy_notify.domain.filters import Filters, matches
from reelpolicy_notify.domain.records import (
    ROBOT_CHANNELS,
    Channel,
    NewDelivery,
    Subscription,
)
from reelpolicy_notify.domain.rendering import DEFAULT_LOCALE, Locale
from reelpolicy_notify.domain.signing import new_secret
from reelpolicy_notify.handlers.fanout import AlertTarget, file_alerts
from reelpolicy_notify.ports import UnitOfWork, UowFactory

TargetCheck = Callable[[str], Awaitable[None]]


class SubscriptionNotFoundError(Exception):
    pass


class SubscriptionQuotaError(Exception):
    """The company is at the most subscriptions it may have."""


class SecretNotOursError(Exception):
    """A group robot's secret is made by its platform: it is replaced, not rotated."""


def _owner(principal: Principal, enterprise_id: str | None) -> str | None:
    if principal.is_operator:
        return enterprise_id
    if enterprise_id not in (None, principal.enterprise_id):
        raise SubscriptionNotFoundError(f"enterprise {enterprise_id}")
    return principal.enterprise_id


async def _visible(
    work: UnitOfWork, principal: Principal, subscription_id: uuid.UUID
) -> Subscription:
    found = await work.subscriptions.get(subscription_id)
    if found is None or not (principal.is_operator or principal.can_see(found.enterprise_id)):
        raise SubscriptionNotFoundError(str(subscription_id))
    return found


async def create_subscription(
    *,
    uow: UowFactory,
    principal: Principal,
    enterprise_id: str | None,
    channel: Channel,
    url: str | None,
    email: str | None,
    events: list[str],
    filters: Filters,
    digest_window_seconds: int | None,
    deadline_days: int,
    backfill: bool,
    check_target: TargetCheck,
    quota: int | None = None,
    robot_secret: str | None = None,
    locale: Locale = DEFAULT_LOCALE,
) -> tuple[Subscription, str | None]:
    """A new subscription and the signing secret made for it (returned once, stored
    sealed). A group robot signs with the secret its platform made (``robot_secret``,
    DingTalk and Feishu; stored sealed, never returned) or with none (WeCom).

    A company key's enterprise may have at most ``quota`` subscriptions (``None``: no
    limit; operators are never limited)."""
    owner = _owner(principal, enterprise_id)
    if url is not None:
        await check_target(url)
    subscription = Subscription(
        id=uuid.uuid4(),
        enterprise_id=owner,
        channel=channel,
        url=url,
        email=email,
        events=tuple(dict.fromkeys(events)),
        filters=filters,
        deadline_days=deadline_days,
        digest_window_seconds=digest_window_seconds,
        locale=locale,
    )
    made = None if channel in ROBOT_CHANNELS else new_secret()
    secret = made or robot_secret
    async with uow() as work:
        if quota is not None and owner is not None and not principal.is_operator:
            await _check_quota(work, enterprise_id=owner, quota=quota)
        stored = await work.subscriptions.add(subscription, secret=secret)
        if backfill and stored.wants("eligibility.changed"):
            await _backfill(work, stored)
        await work.commit()
    return stored, made


async def _check_quota(work: UnitOfWork, *, enterprise_id: str, quota: int) -> None:
    if await work.subscriptions.lock_and_count(enterprise_id) >= quota:
        raise SubscriptionQuotaError(
            f"subscription quota reached: a company may have at most {quota}"
            " subscriptions (MAX_SUBSCRIPTIONS_PER_COMPANY); delete one first"
        )


async def _backfill(work: UnitOfWork, subscription: Subscription) -> None:
    """Current eligible results, as eligibility.changed alerts for the new subscription."""
    now = datetime.now(UTC)
    targets: list[AlertTarget] = []
    for row in await work.projections.eligible(subscription.enterprise_id):
        change = {
            **row,
            "previous_status": None,
            "previous_amount_cny": None,
            "missing_fields": [],
            "explanation": {},
            "cause": "backfill",
        }
        known = await work.projections.policy(row["policy_id"])
        policy = known[0] if known else None
        alert = eligibility_alert(
            event_id="backfill", occurred_at=now, change=change, policy=policy, backfill=True
        )
        if matches(
            subscription.filters,
            policy_id=alert.policy_id,
            policy=policy,
            amount_cny=alert.amount_cny,
        ):
            targets.append(AlertTarget(subscription, alert))
    await file_alerts(work, targets, now=now)


async def get_subscription(
    *, uow: UowFactory, principal: Principal, subscription_id: uuid.UUID
) -> Subscription:
    async with uow() as work:
        return await _visible(work, principal, subscription_id)


async def list_subscriptions(
    *,
    uow: UowFactory,
    principal: Principal,
    enterprise_id: str | None,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[Subscription]:
    everyone = principal.is_operator and enterprise_id is None
    scope = enterprise_id if principal.is_operator else principal.enterprise_id
    if not principal.is_operator and enterprise_id not in (None, principal.enterprise_id):
        return []
    async with uow() as work:
        return await work.subscriptions.page(
            enterprise_id=scope, everyone=everyone, after=after, limit=limit
        )


async def update_subscription(
    *,
    uow: UowFactory,
    principal: Principal,
    subscription_id: uuid.UUID,
    changes: dict[str, Any],
    check_target: TargetCheck,
) -> Subscription:
    """Apply ``changes`` (fields of Subscription, and a robot's new ``secret``);
    ``enabled: true`` re-enables."""
    changes = dict(changes)
    secret = changes.pop("secret", None)
    if changes.get("url"):
        await check_target(changes["url"])
    async with uow() as work:
        current = await _visible(work, principal, subscription_id)
        if changes.get("enabled") and not current.enabled:
            changes = {
                **changes,
                "disabled_reason": None,
                "disabled_at": None,
                "failing_since": None,
            }
        if "events" in changes:
            changes["events"] = tuple(dict.fromkeys(changes["events"]))
        updated = await work.subscriptions.save(dataclasses.replace(current, **changes))
        if secret is not None:
            await work.subscriptions.replace_secret(subscription_id, secret=secret)
        await work.commit()
        return updated


async def delete_subscription(
    *, uow: UowFactory, principal: Principal, subscription_id: uuid.UUID
) -> None:
    async with uow() as work:
        await _visible(work, principal, subscription_id)
        await work.subscriptions.delete(subscription_id)
        await work.commit()


async def get_subscription_for_recipient(
    *, uow: UowFactory, subscription_id: uuid.UUID
) -> Subscription | None:
    """The subscription an unsubscribe link names (its token was checked by the caller)."""
    async with uow() as work:
        return await work.subscriptions.get(subscription_id)


UNSUBSCRIBED = "unsubscribed by the recipient (e-mail link)"


async def unsubscribe(*, uow: UowFactory, subscription_id: uuid.UUID) -> Subscription | None:
    """Pause the subscription for its recipient (None: there is no such subscription).

    Paused rather than deleted: the owner keeps its settings and delivery log and sees
    why it stopped (``disabled_reason``). Idempotent: a paused subscription stays as it is.
    """
    async with uow() as work:
        found = await work.subscriptions.get(subscription_id)
        if found is None or not found.enabled:
            return found
        paused = await work.subscriptions.save(
            dataclasses.replace(
                found, enabled=False, disabled_reason=UNSUBSCRIBED, disabled_at=datetime.now(UTC)
            )
        )
        await work.commit()
        return paused


async def rotate_secret(
    *, uow: UowFactory, principal: Principal, subscription_id: uuid.UUID, overlap_seconds: float
) -> tuple[str, datetime]:
    """A new secret; the previous one keeps signing until the returned time."""
    secret = new_secret()
    until = datetime.now(UTC) + timedelta(seconds=overlap_seconds)
    async with uow() as work:
        subscription = await _visible(work, principal, subscription_id)
        if subscription.channel in ROBOT_CHANNELS:
            raise SecretNotOursError(
                f"a {subscription.channel} robot signs with the secret its platform made:"
                " give the robot's new secret as `secret` in a PATCH instead"
            )
        await work.subscriptions.rotate_secret(subscription_id, secret=secret, overlap_until=until)
        await work.commit()
    return secret, until


async def send_test_message(
    *, uow: UowFactory, principal: Principal, subscription_id: uuid.UUID
) -> uuid.UUID:
    """Queue a ``test`` message to the subscription now (never batched); its delivery id."""
    now = datetime.now(UTC)
    async with uow() as work:
        subscription = await _visible(work, principal, subscription_id)
        delivery = NewDelivery(
            subscription_id=subscription.id,
            enterprise_id=subscription.enterprise_id,
            alert_key=f"test:{uuid.uuid4()}",
            event_type=TEST_TYPE,
            body={
                "type": TEST_TYPE,
                "timestamp": now.isoformat(),
                "data": {
                    "subscription_id": str(subscription.id),
                    "summary": "test message from reelpolicy",
                },
            },
            occurred_at=now,
        )
        await work.deliveries.add_many([delivery])
        await work.commit()
    return delivery.id
