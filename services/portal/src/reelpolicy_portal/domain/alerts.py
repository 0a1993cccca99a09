"""Subscriptions as the Alerts pages offer them (pure): the channels, and a create form
turned into notify's ``POST /v1/subscriptions`` body."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ALERT_TYPES = ("eligibility.changed", "policy.changed", "policy.deadline")
ALERT_TYPE_LABELS = {
    "eligibility.changed": "Eligibility changes",
    "policy.changed": "Policy changes",
    "policy.deadline": "Approaching deadlines",
    "digest": "Digest",
    "test": "Test message",
}
"""English message ids of the kinds of alert (and of the log's other messages)."""
DELIVERY_STATUS_LABELS = {
    "pending": "Waiting to be sent",
    "delivering": "Sending",
    "succeeded": "Delivered",
    "failed": "Failed",
}
RESPONSE_EXCERPT = 300
"""Characters of a receiver's answer shown in the delivery log."""


@dataclass(frozen=True)
class ChannelChoice:
    """One channel of the create form: what it sends to, and whether the platform signs."""

    name: str
    label: str
    """Its name on the page (an English message id, translated by the catalogs)."""
    target: str
    """The form field that carries the destination: ``url`` or ``email``."""
    robot_secret: bool = False
    """The group robot signs (DingTalk, Feishu): its signing secret is asked for too."""
    notify_secret: bool = True
    """notify signs with a secret of its own (``whsec_``), shown once and rotatable;
    group robots are signed with their platform's secret, or not at all."""


CHANNELS: tuple[ChannelChoice, ...] = (
    ChannelChoice("webhook", "Webhook (signed HTTPS POST)", "url"),
    ChannelChoice("email", "E-mail", "email"),
    ChannelChoice("wecom", "WeCom group robot", "url", notify_secret=False),
    ChannelChoice(
        "dingtalk", "DingTalk group robot", "url", robot_secret=True, notify_secret=False
    ),
    ChannelChoice("feishu", "Feishu group robot", "url", robot_secret=True, notify_secret=False),
)
CHANNELS_BY_NAME = {c.name: c for c in CHANNELS}


class SubscriptionFormError(Exception):
    """A create form the portal can already tell is incomplete; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def subscription_body(
    *,
    enterprise_id: str,
    channel: str,
    url: str,
    email: str,
    secret: str,
    events: list[str],
    deadline_days: str,
) -> dict[str, Any]:
    """The request body for notify; notify checks the rest (and answers 4xx naming it)."""
    choice = CHANNELS_BY_NAME.get(channel)
    if choice is None:
        raise SubscriptionFormError("channel", "Choose a channel.")
    chosen = [e for e in events if e in ALERT_TYPES]
    if not chosen:
        raise SubscriptionFormError("events", "Choose at least one kind of alert.")
    target = (url if choice.target == "url" else email).strip()
    if not target:
        raise SubscriptionFormError(choice.target, "Fill in where the alerts go.")
    body: dict[str, Any] = {
        "enterprise_id": enterprise_id,
        "channel": choice.name,
        choice.target: target,
        "events": chosen,
    }
    if choice.robot_secret:
        if not secret.strip():
            raise SubscriptionFormError("secret", "Fill in the robot's signing secret.")
        body["secret"] = secret.strip()
    if deadline_days.strip():
        try:
            body["deadline_days"] = int(deadline_days)
        except ValueError:
            raise SubscriptionFormError("deadline_days", "Give a whole number of days.") from None
    return body


def excerpt(text: str | None) -> str:
    if not text:
        return ""
    return text if len(text) <= RESPONSE_EXCERPT else text[:RESPONSE_EXCERPT] + "…"


def last_attempt(delivery: dict[str, Any]) -> dict[str, Any] | None:
    attempts: list[dict[str, Any]] = delivery.get("attempts") or []
    return max(attempts, key=lambda a: int(a["attempt"])) if attempts else None
