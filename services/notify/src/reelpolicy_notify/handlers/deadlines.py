"""policy.deadline alerts: policies expiring within a subscription's horizon.

A scan (on a timer in every instance; the unique alert key makes overlapping scans
harmless) files one alert per (subscription, policy, expiry date) for enterprises
eligible for the policy (platform-wide subscriptions: every expiring policy).
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from reelpolicy_notify.domain.alerts import deadline_alert
from reelpolicy_notify.domain.filters import matches
from reelpolicy_notify.handlers.fanout import AlertTarget, file_alerts
from reelpolicy_notify.ports import UowFactory

MAX_HORIZON_DAYS = 366


async def scan_deadlines(*, uow: UowFactory, today: date | None = None) -> int:
    """File the deadline alerts due today; returns how many deliveries were created."""
    now = datetime.now(UTC)
    today = today or now.date()
    async with uow() as work:
        await work.lock_deadline_scan()
        expiring = await work.projections.expiring(today=today, within_days=MAX_HORIZON_DAYS)
        if not expiring:
            return 0
        subscribed = await work.subscriptions.for_region(None, "policy.deadline")
        targets: list[AlertTarget] = []
        for policy, expires_on in expiring:
            eligible = await work.projections.eligible_subjects(policy.policy_id)
            days_left = (expires_on - today).days
            for subscription, enterprise_id in subscribed:
                if days_left > subscription.deadline_days:
                    continue
                subjects = eligible.get(enterprise_id, []) if enterprise_id else []
                if enterprise_id and not subjects:
                    continue
                alert = deadline_alert(
                    policy=policy,
                    expires_on=expires_on,
                    today=today,
                    now=now,
                    enterprise_id=enterprise_id,
                    subjects=subjects,
                )
                if matches(
                    subscription.filters,
                    policy_id=policy.policy_id,
                    policy=policy,
                    amount_cny=alert.amount_cny,
                ):
                    targets.append(AlertTarget(subscription, alert))
        created = await file_alerts(work, targets, now=now)
        await work.commit()
        return created
