"""Retry schedule and the outcome of one delivery attempt (pure)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal

Verdict = Literal["succeeded", "retry", "gone", "failed"]
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})
MAX_RETRY_AFTER_SECONDS = 24 * 3600.0


def parse_schedule(text: str) -> tuple[float, ...]:
    """``"0,5,300"`` -> (0.0, 5.0, 300.0): the delay before attempt 1, 2, 3..."""
    delays = tuple(float(part) for part in text.split(",") if part.strip())
    if not delays or any(d < 0 for d in delays):
        raise ValueError(f"invalid retry schedule {text!r}")
    return delays


def classify(status_code: int | None) -> Verdict:
    """2xx succeeds; 410 disables; timeouts/connection errors (None), 5xx, 429 retry."""
    if status_code is None:
        return "retry"
    if 200 <= status_code < 300:
        return "succeeded"
    if status_code == 410:
        return "gone"
    if status_code in RETRYABLE_STATUS or status_code >= 500:
        return "retry"
    return "failed"


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return min(float(value), MAX_RETRY_AFTER_SECONDS)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max((when - now).total_seconds(), 0.0), MAX_RETRY_AFTER_SECONDS)


@dataclass(frozen=True)
class NextAttempt:
    delay_seconds: float | None  # None: no attempts left


def next_attempt(
    *,
    schedule: tuple[float, ...],
    attempts_made: int,
    retry_after: float | None = None,
    jitter: float = 0.1,
    rng: random.Random | None = None,
) -> NextAttempt:
    """When to try again after ``attempts_made`` attempts (schedule[attempts_made], jittered).

    A ``Retry-After`` longer than the scheduled delay wins (it is honoured, not shortened).
    """
    if attempts_made >= len(schedule):
        return NextAttempt(None)
    base = schedule[attempts_made]
    spread = base * jitter
    delay = base + (rng or random).uniform(-spread, spread) if spread else base
    if retry_after is not None:
        delay = max(delay, retry_after)
    return NextAttempt(max(delay, 0.0))
