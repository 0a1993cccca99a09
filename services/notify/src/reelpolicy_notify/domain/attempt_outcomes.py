"""What an attempt's result means for its delivery and its endpoint (pure)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from reelpolicy_notify.domain.records import ClaimedDelivery, SendResult
from reelpolicy_notify.domain.retries import classify, next_attempt


@dataclass(frozen=True)
class Outcome:
    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    attempt_count: int
    total_attempts: int
    status: Literal["succeeded", "pending", "failed"]
    retry_in_seconds: float | None
    error: str | None
    result: SendResult
    endpoint_ok: bool  # success clears the endpoint's failing clock
    disable_reason: str | None  # set: disable the subscription and tell its owner
    metric_outcome: str


def storable(text: str | None) -> str | None:
    """``text`` as PostgreSQL's ``text`` takes it: NUL (which it refuses) and lone
    surrogates (which UTF-8 cannot encode) become replacement characters."""
    if text is None:
        return None
    return text.replace("\x00", "\ufffd").encode("utf-8", "replace").decode("utf-8")


def without_details(outcome: Outcome, *, reason: str) -> Outcome:
    """``outcome`` with nothing of its attempt's result but ``reason``: for an outcome
    the database refused as it was, so the attempt and its decision are still stored."""
    return replace(outcome, result=SendResult(None, 0, error=reason), error=reason)


def decide_outcome(
    *,
    claimed: ClaimedDelivery,
    result: SendResult,
    schedule: tuple[float, ...],
    jitter: float,
    now: datetime,
    disable_after_seconds: float,
) -> Outcome:
    verdict = "failed" if result.refused else result.rejected or classify(result.status_code)
    error = result.error or (None if verdict == "succeeded" else f"HTTP {result.status_code}")
    retry_in: float | None = None
    disable: str | None = None
    status: Literal["succeeded", "pending", "failed"]
    if verdict == "succeeded":
        status = "succeeded"
    elif verdict == "gone":
        status, disable = "failed", "the endpoint answered 410 Gone"
    elif verdict == "retry":
        retry_in = next_attempt(
            schedule=schedule,
            attempts_made=claimed.attempt_count,
            retry_after=result.retry_after_seconds,
            jitter=jitter,
        ).delay_seconds
        status = "failed" if retry_in is None else "pending"
    else:
        status = "failed"
    failing_for = (now - claimed.failing_since).total_seconds() if claimed.failing_since else 0.0
    if verdict != "succeeded" and disable is None and failing_for >= disable_after_seconds:
        disable = f"every attempt failed for {failing_for / 86400:.1f} days"
        status, retry_in = "failed", None
    return Outcome(
        delivery_id=claimed.id,
        subscription_id=claimed.subscription_id,
        attempt_count=claimed.attempt_count,
        total_attempts=claimed.total_attempts,
        status=status,
        retry_in_seconds=retry_in,
        error=error,
        result=result,
        endpoint_ok=verdict == "succeeded",
        disable_reason=disable,
        metric_outcome="refused" if result.refused else verdict,
    )
