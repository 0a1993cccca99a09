"""Helpers the tests share (not fixtures)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any


def unique_topic(prefix: str = "t") -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"


async def eventually(
    predicate: Callable[[], Any | Awaitable[Any]], *, timeout: float = 15.0, interval: float = 0.05
) -> Any:
    """Wait until ``predicate()`` (sync or async) is truthy; return its value."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)


ROOT = Path(__file__).resolve().parent.parent
