"""The Alerts pages' use cases: a company's subscriptions and their delivery log, all
through notify's API with the company's own key (notify answers 404 for another's)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

from reelpolicy_portal.domain.alerts import excerpt, last_attempt, subscription_body
from reelpolicy_portal.ports import Alerts

LOG_SIZE = 100


@dataclass(frozen=True)
class LogLine:
    """One delivery as the log shows it: its last attempt's code, latency and answer."""

    delivery: dict[str, Any]
    status_code: int | None
    latency_ms: int | None
    response_excerpt: str

    @property
    def replayable(self) -> bool:
        return bool(self.delivery["status"] == "failed")


def log_lines(deliveries: list[dict[str, Any]]) -> list[LogLine]:
    lines = []
    for d in deliveries:
        last = last_attempt(d)
        answer = None if last is None else (last.get("response_body") or last.get("error"))
        lines.append(
            LogLine(
                d,
                None if last is None else last.get("status_code"),
                None if last is None else int(last["latency_ms"]),
                excerpt(answer or d.get("last_error")),
            )
        )
    return lines


async def subscriptions_page(
    notify: Alerts, api_key: str, enterprise_id: str
) -> list[dict[str, Any]]:
    return await notify.subscriptions(api_key, enterprise_id)


async def subscription_page(
    notify: Alerts, api_key: str, subscription_id: str
) -> tuple[dict[str, Any], list[LogLine]]:
    subscription, deliveries = await asyncio.gather(
        notify.subscription(api_key, subscription_id),
        notify.deliveries(api_key, subscription_id=subscription_id, limit=LOG_SIZE),
    )
    return subscription, log_lines(deliveries)


async def delivery_log(notify: Alerts, api_key: str, status: str | None) -> list[LogLine]:
    return log_lines(await notify.deliveries(api_key, status=status, limit=LOG_SIZE))


async def subscribe(
    notify: Alerts, api_key: str, enterprise_id: str, form: dict[str, Any]
) -> dict[str, Any]:
    """Raises SubscriptionFormError (the portal's own check) or InputRejectedError (notify's)."""
    body = subscription_body(enterprise_id=enterprise_id, **form)
    return await notify.create_subscription(api_key, body)


async def set_paused(notify: Alerts, api_key: str, subscription_id: str, *, paused: bool) -> None:
    await notify.change_subscription(api_key, subscription_id, {"enabled": not paused})
