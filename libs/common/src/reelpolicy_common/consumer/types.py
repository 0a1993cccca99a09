"""What consumer handlers receive: a decoded event with where it came from."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

from reelpolicy_common.events.envelope import Envelope


@dataclass(frozen=True)
class ConsumedEvent:
    envelope: Envelope
    topic: str
    partition: int
    offset: int
    headers: dict[str, str]
    traceparent: str | None = None
    """The CONSUMER span handling this record: the parent for what the handler causes."""


EventHandler = Callable[[ConsumedEvent], Awaitable[None]]
BatchHandler = Callable[[Sequence[ConsumedEvent]], Awaitable[None]]
"""Handles a whole batch at once, all or nothing (one transaction)."""
