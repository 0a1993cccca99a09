"""Notify's gauges read from its database: deliveries waiting and endpoints disabled."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import REGISTRY

from reelpolicy_common.db.pool import connect, create_pool
from reelpolicy_notify.adapters.delivery_gauges import refresh_delivery_gauges
from service_harness import migrate_service

pytestmark = pytest.mark.servers


def sample(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


async def test_the_gauges_count_what_waits_and_what_notify_disabled(fresh_database: str) -> None:
    await migrate_service(fresh_database, "reelpolicy_notify.migrations", "notify")
    conn = await connect(fresh_database)
    try:
        subscriptions = {}
        for name, channel, enabled, reason in [
            ("live", "webhook", True, None),
            ("gone", "webhook", False, "the endpoint answered 410 Gone"),
            ("failing", "webhook", False, "every attempt failed for 5.0 days"),
            ("paused", "webhook", False, None),  # its owner's pause: not counted
            ("mail-gone", "email", False, "bounced"),
        ]:
            subscriptions[name] = uuid.uuid4()
            await conn.execute(
                "INSERT INTO subscriptions (id, channel, url, email, events, secret_sealed,"
                " enabled, disabled_reason)"
                " VALUES ($1, $2, $3, $4, '{eligibility.changed}', 'x', $5, $6)",
                subscriptions[name],
                channel,
                "https://example.com/hook" if channel == "webhook" else None,
                "a@example.com" if channel == "email" else None,
                enabled,
                reason,
            )
        for i, (status, next_attempt, claimed_until) in enumerate(
            [
                ("pending", "now() - interval '10 minutes'", None),  # due for 10 minutes
                ("pending", "now() - interval '1 minute'", None),  # due
                ("pending", "now() + interval '1 hour'", None),  # a retry, later
                ("delivering", "now()", "now() + interval '1 minute'"),  # being attempted
                ("delivering", "now()", "now() - interval '2 minutes'"),  # lease over: due
                ("succeeded", "now() - interval '1 day'", None),
                ("failed", "now() - interval '1 day'", None),
            ]
        ):
            await conn.execute(
                "INSERT INTO deliveries (id, subscription_id, alert_key, event_type, status,"
                f" next_attempt_at, claimed_until) VALUES ($1, $2, $3, 'x', $4,"
                f" {next_attempt}, {claimed_until or 'NULL'})",
                uuid.uuid4(),
                subscriptions["live"],
                f"alert-{i}",
                status,
            )
    finally:
        await conn.close()

    pool = await create_pool(fresh_database, min_size=1, max_size=1)
    try:
        await refresh_delivery_gauges(pool)
    finally:
        await pool.close()

    assert sample("reelpolicy_deliveries_pending") == 5
    assert sample("reelpolicy_deliveries_due") == 3
    overdue = sample("reelpolicy_deliveries_overdue_seconds")
    assert overdue is not None
    assert 600 <= overdue < 700
    assert sample("reelpolicy_subscriptions_disabled", channel="webhook") == 2
    assert sample("reelpolicy_subscriptions_disabled", channel="email") == 1
