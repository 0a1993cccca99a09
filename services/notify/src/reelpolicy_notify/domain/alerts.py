"""Alerts: their idempotency keys and the JSON bodies subscribers receive (pure).

An alert's ``alert_key`` derives from the source event id (plus policy and subject),
so the same event always yields the same key; ``(subscription_id, alert_key)`` is
unique in the database, which is what makes a redelivered event a no-op.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Literal

from reelpolicy_notify.domain.policies import PolicyFacts
from reelpolicy_notify.domain.summaries import ChangeItem, summarize_eligibility

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
AlertType = Literal["eligibility.changed", "policy.changed", "policy.deadline"]
ALERT_TYPES: tuple[AlertType, ...] = ("eligibility.changed", "policy.changed", "policy.deadline")
DIGEST_TYPE = "digest"
TEST_TYPE = "test"


@dataclass(frozen=True)
class Alert:
    alert_key: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]
    policy_id: str
    amount_cny: int | None = None

    def body(self) -> dict[str, Any]:
        """The Standard Webhooks payload: ``{type, timestamp, data}``."""
        return {"type": self.type, "timestamp": self.occurred_at.isoformat(), "data": self.data}

    @classmethod
    def from_body(cls, body: dict[str, Any], *, alert_key: str = "") -> Alert:
        """The alert a delivery's stored ``body`` (``{type, timestamp, data}``) was made
        from (digests and tests too)."""
        data = body.get("data") or {}
        try:
            occurred_at = datetime.fromisoformat(str(body.get("timestamp")))
        except ValueError:
            occurred_at = _EPOCH
        amount = data.get("amount_cny")
        return cls(
            alert_key=alert_key,
            type=str(body.get("type", "")),
            occurred_at=occurred_at,
            data=data,
            policy_id=str(data.get("policy_id") or ""),
            amount_cny=amount if isinstance(amount, int) else None,
        )


def eligibility_alert(
    *,
    event_id: uuid.UUID | str,
    occurred_at: datetime,
    change: dict[str, Any],
    policy: PolicyFacts | None,
    backfill: bool = False,
) -> Alert:
    subject = f"{change['subject_type']}:{change['subject_id']}"
    origin = "backfill" if backfill else str(event_id)
    amounts = [a for a in (change.get("amount_cny"), change.get("previous_amount_cny")) if a]
    data = {
        **change,
        "event_id": None if backfill else str(event_id),
        "backfill": backfill,
        "policy_title": policy.title if policy else None,
        "policy_title_zh": policy.title_zh if policy else None,
        "summary": summarize_eligibility(change, policy_title=policy.title if policy else None),
    }
    return Alert(
        alert_key=f"{origin}:{change['policy_id']}:{subject}",
        type="eligibility.changed",
        occurred_at=occurred_at,
        data=data,
        policy_id=change["policy_id"],
        amount_cny=max(amounts) if amounts else None,
    )


def policy_changed_alert(
    *,
    event_id: uuid.UUID | str,
    occurred_at: datetime,
    policy: PolicyFacts,
    change: Literal["published", "revoked"],
    previous_version: int | None,
    summary: list[str],
    changes: Sequence[ChangeItem] = (),
) -> Alert:
    """``summary``: the English sentences (webhook consumers read them); ``changes``: the
    same as catalog keys and parameters, which alerts for people word per locale."""
    data = {
        "event_id": str(event_id),
        "policy_id": policy.policy_id,
        "version": policy.version,
        "previous_version": previous_version,
        "change": change,
        "title": policy.title,
        "title_zh": policy.title_zh,
        "issuer_level": policy.issuer_level,
        "region_prefix": policy.region_prefix,
        "summary": "; ".join(summary),
        "changes": summary,
        "change_items": [{"key": key, "params": params} for key, params in changes],
    }
    return Alert(
        alert_key=f"{event_id}:policy:{policy.policy_id}",
        type="policy.changed",
        occurred_at=occurred_at,
        data=data,
        policy_id=policy.policy_id,
        amount_cny=policy.max_amount_cny,
    )


def deadline_alert(
    *,
    policy: PolicyFacts,
    expires_on: date,
    today: date,
    now: datetime,
    enterprise_id: str | None,
    subjects: list[str],
) -> Alert:
    days = (expires_on - today).days
    data = {
        "policy_id": policy.policy_id,
        "version": policy.version,
        "title": policy.title,
        "title_zh": policy.title_zh,
        "expires_on": expires_on.isoformat(),
        "days_left": days,
        "enterprise_id": enterprise_id,
        "eligible_subjects": subjects,
        "summary": f"{policy.title} expires on {expires_on.isoformat()} (in {days} days)",
    }
    return Alert(
        alert_key=f"deadline:{policy.policy_id}:{expires_on.isoformat()}",
        type="policy.deadline",
        occurred_at=now,
        data=data,
        policy_id=policy.policy_id,
        amount_cny=policy.max_amount_cny,
    )


def digest_key(*, now: datetime, window_seconds: int, skip_windows: int = 0) -> tuple[str, float]:
    """The digest delivery key of the window containing ``now`` and when it closes (epoch s)."""
    start = int(now.timestamp()) // window_seconds * window_seconds
    start += skip_windows * window_seconds
    return f"digest:{start}", float(start + window_seconds)


def digest_body(
    *, items: list[dict[str, Any]], window_seconds: int, now: datetime
) -> dict[str, Any]:
    """One message batching the alerts of a digest window (oldest first)."""
    items = sorted(items, key=lambda i: str(i.get("timestamp")))
    return {
        "type": DIGEST_TYPE,
        "timestamp": now.isoformat(),
        "data": {
            "window_seconds": window_seconds,
            "count": len(items),
            "summary": [str(i.get("data", {}).get("summary", i.get("type"))) for i in items],
            "alerts": items,
        },
    }
