"""Time: which day it is for policies, when the next day starts, what a new day changes."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from reelpolicy_policy import Policy
from reelpolicy_policy.evaluate import in_force

AGE_FIELD = "enterprise.age_days"


def local_day(now: datetime, tz: str) -> date:
    return now.astimezone(ZoneInfo(tz)).date()


def next_day_start(now: datetime, tz: str) -> datetime:
    """The first instant of the next day in ``tz`` (an aware datetime)."""
    zone = ZoneInfo(tz)
    tomorrow = now.astimezone(zone).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time.min, tzinfo=zone)


def depends_on_day(policy: Policy, *, before: date, today: date) -> bool:
    """Whether moving from ``before`` to ``today`` can change this policy's results.

    Results depend on the date only through ``effective`` (in force or not) and the
    derived ``enterprise.age_days``; other date fields compare stored dates.
    """
    if AGE_FIELD in policy.fields:
        return True
    return in_force(policy, before) != in_force(policy, today)


def policies_for_new_day(
    policies: list[Policy], *, before: date | None, today: date
) -> list[Policy]:
    """The policies to re-evaluate when the day moves from ``before`` to ``today``."""
    if before is None or before >= today:
        return []
    return [p for p in policies if depends_on_day(p, before=before, today=today)]
