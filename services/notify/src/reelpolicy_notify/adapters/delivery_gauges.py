"""Notify's gauges read from its database: deliveries waiting, endpoints disabled.

Every notify replica reports the same values (one database); the alert rules and the
dashboard take the largest.
"""

from __future__ import annotations

import typing

import asyncpg

from reelpolicy_common.gauge_refresh import refresh_gauges_forever
from reelpolicy_common.metrics import (
    DELIVERIES_DUE,
    DELIVERIES_OVERDUE_SECONDS,
    DELIVERIES_PENDING,
    SUBSCRIPTIONS_DISABLED,
)
from reelpolicy_notify.domain.records import Channel

EVERY_SECONDS = 15.0
CHANNELS = typing.get_args(Channel)

# "Due" is what the worker's claim takes: pending and due, or leased and the lease over.
_DELIVERIES = """
    SELECT count(*) AS pending,
           count(*) FILTER (WHERE due) AS due,
           coalesce(extract(epoch FROM now() - min(due_at) FILTER (WHERE due)), 0)::float8
               AS overdue
    FROM (SELECT CASE WHEN status = 'pending' THEN next_attempt_at ELSE claimed_until END
                     AS due_at,
                 (status = 'pending' AND next_attempt_at <= now())
                     OR (status = 'delivering' AND claimed_until < now()) AS due
          FROM deliveries WHERE status IN ('pending', 'delivering')) d"""

# Disabled by notify (410 Gone, failing for days) carries a reason; an owner's pause none.
_DISABLED = """
    SELECT channel, count(*) AS n FROM subscriptions
    WHERE NOT enabled AND disabled_reason IS NOT NULL GROUP BY channel"""


async def refresh_delivery_gauges(pool: asyncpg.Pool) -> None:
    async with pool.acquire() as conn:
        deliveries = await conn.fetchrow(_DELIVERIES)
        disabled = {row["channel"]: row["n"] for row in await conn.fetch(_DISABLED)}
    assert deliveries is not None
    DELIVERIES_PENDING.set(deliveries["pending"])
    DELIVERIES_DUE.set(deliveries["due"])
    DELIVERIES_OVERDUE_SECONDS.set(max(deliveries["overdue"], 0.0))
    for channel in CHANNELS:
        SUBSCRIPTIONS_DISABLED.labels(channel).set(disabled.get(channel, 0))


async def watch_delivery_gauges(pool: asyncpg.Pool) -> None:
    """Refresh the gauges every :data:`EVERY_SECONDS`, for the life of the process."""
    await refresh_gauges_forever(
        lambda: refresh_delivery_gauges(pool), what="delivery gauges", every_seconds=EVERY_SECONDS
    )
