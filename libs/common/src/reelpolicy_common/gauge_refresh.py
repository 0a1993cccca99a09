"""Gauges read from a service's own state (its database) on a timer.

A value that lives in the database (deliveries waiting, subscriptions disabled) is not
known where the code changes it in every replica, and a Prometheus collector cannot
await a query at scrape time; so a supervised background task reads it every few
seconds and sets the gauges (:func:`refresh_gauges_forever`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from reelpolicy_common.supervisor import heartbeat

log = logging.getLogger(__name__)


async def refresh_gauges_forever(
    refresh: Callable[[], Awaitable[None]],
    *,
    what: str,
    every_seconds: float,
    timeout_seconds: float = 10.0,
) -> None:
    """Call ``refresh`` now and every ``every_seconds``, for good. A refresh that fails
    or takes longer than ``timeout_seconds`` is logged and the next follows on time
    (the gauges keep their last values; a database outage has alerts of its own)."""
    while True:
        heartbeat(within=every_seconds + timeout_seconds)
        try:
            async with asyncio.timeout(timeout_seconds):
                await refresh()
        except Exception as exc:
            log.warning("refreshing %s failed: %r", what, exc)
        await asyncio.sleep(every_seconds)
