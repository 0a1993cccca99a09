"""What the notify use cases need from the outside world (implemented in adapters)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import Any, Protocol

from reelpolicy_common.uow import UnitOfWorkPort
from reelpolicy_notify.domain.attempt_outcomes import Outcome
from reelpolicy_notify.domain.policies import PolicyFacts
from reelpolicy_notify.domain.records import (
    ClaimedDelivery,
    Delivery,
    NewDelivery,
    SendResult,
    Subscription,
)


class SubscriptionRepository(Protocol):
    async def add(self, subscription: Subscription, *, secret: str | None) -> Subscription:
        """Store it with its signing secret, sealed (None: a channel that signs nothing)."""
        ...

    async def lock_and_count(self, enterprise_id: str) -> int:
        """The enterprise's subscriptions, counted under a lock held until the
        transaction ends (concurrent creations for it wait for each other)."""
        ...

    async def get(self, subscription_id: uuid.UUID) -> Subscription | None: ...

    async def page(
        self,
        *,
        enterprise_id: str | None,
        everyone: bool,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Subscription]: ...

    async def save(self, subscription: Subscription) -> Subscription: ...

    async def delete(self, subscription_id: uuid.UUID) -> bool: ...

    async def rotate_secret(
        self, subscription_id: uuid.UUID, *, secret: str, overlap_until: datetime
    ) -> None: ...

    async def replace_secret(self, subscription_id: uuid.UUID, *, secret: str) -> None:
        """A new signing secret at once, with no overlap (a robot's, set on its platform)."""

    async def for_enterprise(self, enterprise_id: str, event_type: str) -> list[Subscription]:
        """Enabled subscriptions of the enterprise, and platform-wide ones, wanting the type."""

    async def for_region(
        self, prefix: str | None, event_type: str
    ) -> list[tuple[Subscription, str | None]]:
        """(subscription, enterprise) for enterprises within ``prefix``, plus platform-wide."""

    async def disable(self, subscription_id: uuid.UUID, *, reason: str) -> Subscription | None: ...

    async def record_eligibility_and_find(
        self, changes: Sequence[dict[str, Any]]
    ) -> tuple[dict[str | None, list[Subscription]], dict[str, dict[str, Any]]]:
        """Project the eligibility changes (in order; the last per result wins); return
        the subscriptions wanting them by enterprise id (``None``: platform-wide) and
        the policy projections (``{version, document, revoked}``) by policy id."""


class DeliveryRepository(Protocol):
    async def add_many(self, deliveries: Sequence[NewDelivery]) -> int: ...

    async def add_to_digest(
        self, delivery: NewDelivery, *, window_seconds: int, now: datetime
    ) -> bool: ...

    async def page(
        self,
        *,
        enterprise_id: str | None,
        everyone: bool,
        subscription_id: uuid.UUID | None,
        status: str | None,
        since: datetime | None,
        after: tuple[datetime, uuid.UUID] | None,
        limit: int,
    ) -> list[Delivery]: ...

    async def get(self, delivery_id: uuid.UUID) -> Delivery | None: ...

    async def replay(self, delivery_id: uuid.UUID) -> bool: ...

    async def replay_failed_since(
        self, since: datetime, *, enterprise_id: str | None, everyone: bool
    ) -> int: ...


class ProjectionRepository(Protocol):
    async def upsert_enterprise(
        self, enterprise_id: str, *, region_code: str, version: int, deleted: bool
    ) -> None: ...

    async def policy(self, policy_id: str) -> tuple[PolicyFacts, dict[str, Any]] | None: ...

    async def save_policy(
        self, policy_id: str, *, version: int, document: dict[str, Any], revoked: bool
    ) -> None: ...

    async def upsert_eligibility(self, change: dict[str, Any]) -> None: ...

    async def eligible(self, enterprise_id: str | None) -> list[dict[str, Any]]: ...

    async def expiring(
        self, *, today: date, within_days: int
    ) -> list[tuple[PolicyFacts, date]]: ...

    async def eligible_subjects(self, policy_id: str) -> dict[str, list[str]]:
        """enterprise id -> its eligible subjects ("type:id") for ``policy_id``."""


class UnitOfWork(UnitOfWorkPort, Protocol):
    @property
    def subscriptions(self) -> SubscriptionRepository: ...

    @property
    def deliveries(self) -> DeliveryRepository: ...

    @property
    def projections(self) -> ProjectionRepository: ...

    async def record_processed_many(
        self, *, consumer: str, event_ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        """Record the events as processed by ``consumer``; returns those not processed before."""
        ...

    async def apply_api_key_changed(self, payload: dict[str, object]) -> None:
        """Project an ``api_key.changed`` event into this service's API keys."""

    async def lock_deadline_scan(self) -> None:
        """Wait for any other deadline scan; held until the transaction ends."""

    async def __aenter__(self) -> UnitOfWork: ...


UowFactory = Callable[[], UnitOfWork]


class DeliveryQueue(Protocol):
    """The worker's view of the deliveries table (its own short transactions)."""

    async def claim(self, *, limit: int, lease_seconds: float) -> list[ClaimedDelivery]: ...

    async def next_due(self) -> datetime | None: ...

    async def record(self, outcomes: Sequence[Outcome]) -> list[uuid.UUID]:
        """Store the attempts and new states; returns subscriptions newly disabled."""

    async def digest_items(self, delivery_id: uuid.UUID) -> list[dict[str, Any]]: ...

    async def set_body(self, delivery_id: uuid.UUID, body: dict[str, Any]) -> None: ...


class WebhookSender(Protocol):
    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> SendResult: ...


class EmailSender(Protocol):
    def unsubscribe_url(self, subscription_id: uuid.UUID) -> str:
        """The public link that unsubscribes the subscription's recipient."""
        ...

    async def send(
        self,
        to: str,
        *,
        subject: str,
        text: str,
        html: str | None = None,
        headers: dict[str, str],
    ) -> SendResult: ...
