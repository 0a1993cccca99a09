"""Subscriptions, deliveries and attempts as notify stores them (pure records)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from reelpolicy_contracts.ids import uuid7
from reelpolicy_notify.domain.filters import Filters
from reelpolicy_notify.domain.rendering import DEFAULT_LOCALE, Locale

Channel = Literal["webhook", "email", "wecom", "dingtalk", "feishu"]
RobotChannel = Literal["wecom", "dingtalk", "feishu"]
ROBOT_CHANNELS: frozenset[str] = frozenset({"wecom", "dingtalk", "feishu"})
"""Group robots: a webhook URL the platform gave, our message in the platform's format."""
SIGNED_ROBOT_CHANNELS: frozenset[str] = frozenset({"dingtalk", "feishu"})
"""Robots signed with the secret the platform showed the user (its "加签" setting)."""
URL_CHANNELS: frozenset[str] = frozenset({"webhook", *ROBOT_CHANNELS})
DeliveryStatus = Literal["pending", "delivering", "succeeded", "failed"]


@dataclass(frozen=True)
class Subscription:
    id: uuid.UUID
    enterprise_id: str | None
    channel: Channel
    url: str | None
    email: str | None
    events: tuple[str, ...]
    filters: Filters
    deadline_days: int = 30
    digest_window_seconds: int | None = None
    locale: Locale = DEFAULT_LOCALE  # the language its alerts are written in
    enabled: bool = True
    disabled_reason: str | None = None
    disabled_at: datetime | None = None
    failing_since: datetime | None = None
    previous_secret_expires_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def wants(self, event_type: str) -> bool:
        return self.enabled and event_type in self.events


@dataclass(frozen=True)
class NewDelivery:
    """A delivery to create (ON CONFLICT (subscription_id, alert_key) DO NOTHING)."""

    subscription_id: uuid.UUID
    enterprise_id: str | None
    alert_key: str
    event_type: str
    body: dict[str, Any]
    occurred_at: datetime
    traceparent: str | None = None
    id: uuid.UUID = field(default_factory=uuid7)  # time-ordered: the index stays compact


@dataclass(frozen=True)
class Attempt:
    attempt: int
    at: datetime
    status_code: int | None
    latency_ms: int
    error: str | None
    response_body: str | None


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    subscription_id: uuid.UUID
    enterprise_id: str | None
    alert_key: str
    event_type: str
    body: dict[str, Any] | None
    status: DeliveryStatus
    attempt_count: int
    total_attempts: int
    next_attempt_at: datetime | None
    occurred_at: datetime
    created_at: datetime
    finished_at: datetime | None
    last_error: str | None
    attempts: tuple[Attempt, ...] = ()


@dataclass(frozen=True)
class ClaimedDelivery:
    """A delivery a worker leased for one attempt, with what it needs to send it."""

    id: uuid.UUID
    subscription_id: uuid.UUID
    enterprise_id: str | None
    event_type: str
    body: dict[str, Any] | None
    attempt_count: int
    total_attempts: int
    traceparent: str | None
    channel: Channel
    url: str | None
    email: str | None
    enabled: bool
    secrets: tuple[str, ...]  # unsealed: the current first, then the previous in overlap
    digest_window_seconds: int | None
    failing_since: datetime | None
    secret_error: str | None = None  # set: a signing secret did not open (fails for good)
    locale: Locale = DEFAULT_LOCALE
    alert_key: str = ""


@dataclass(frozen=True)
class SendResult:
    """What one attempt produced: a status code (None when no response) and details."""

    status_code: int | None
    latency_ms: int
    error: str | None = None
    response_body: str | None = None
    retry_after_seconds: float | None = None
    refused: bool = False  # the target was unsafe: never retried
    # A robot that answered 2xx but refused the message in its body (errcode != 0):
    # "retry" (rate limited, busy) or "failed" (bad secret, bad message); None: no refusal.
    rejected: Literal["retry", "failed"] | None = None
