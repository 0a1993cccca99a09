"""The feeds behind a company's secret address: the deadlines of the policies it is
eligible for (iCalendar) and the changes of its results under each policy (Atom), read
with the company's key and built by :mod:`reelpolicy_portal.domain.feeds`."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import date, datetime
from typing import Any, cast

from reelpolicy_portal.domain.eligibility import Row
from reelpolicy_portal.domain.feed_access import MAX_TOKEN_LENGTH, FeedAccess
from reelpolicy_portal.domain.feeds import (
    FeedEntry,
    Locale,
    PolicyDeadline,
    changes_feed,
    deadline_calendar,
)
from reelpolicy_portal.handlers.overview import eligibility_rows
from reelpolicy_portal.ports import FeedTokens, Services

HISTORIES_READ = 50
"""Results whose history the changes feed reads (eligible and unknown first)."""
Describe = Callable[[Row, dict[str, Any]], str]
"""A history entry of a result in plain language (the page's words and locale)."""


class FeedNotFoundError(Exception):
    """No live feed at that address."""


def policy_url(site: str, policy_id: str) -> str:
    return f"{site.rstrip('/')}/policies/{policy_id}"


def _title(document: dict[str, Any], locale: str) -> str:
    titles = document.get("title") or {}
    if not isinstance(titles, dict):
        return str(titles)
    return str(titles.get("zh" if locale == "zh-CN" else "en") or next(iter(titles.values()), ""))


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def open_feed(tokens: FeedTokens, token: str) -> FeedAccess:
    access = None if len(token) > MAX_TOKEN_LENGTH else await tokens.resolve(token)
    if access is None:
        raise FeedNotFoundError()
    return access


async def deadlines(services: Services, access: FeedAccess, *, site: str) -> bytes:
    """One event per policy the company is eligible for whose effective window ends."""
    key, enterprise_id = access.api_key, access.enterprise_id
    enterprise, rows = await asyncio.gather(
        services.enterprise(key, enterprise_id), eligibility_rows(services, key, enterprise_id)
    )
    best: dict[str, Row] = {}
    for row in rows:
        if row.status == "eligible" and row.policy_version is not None:
            held = best.get(row.policy_id)
            if held is None or (row.amount_cny or 0) > (held.amount_cny or 0):
                best[row.policy_id] = row

    async def deadline(row: Row) -> PolicyDeadline | None:
        version = int(row.policy_version or 0)
        document, history = await asyncio.gather(
            services.policy_version(key, row.policy_id, version),
            services.history(key, row.subject_id, row.policy_id),
        )
        ends = (document.get("effective") or {}).get("to")
        if not ends:
            return None
        # ingest publishes no time per version: the feed dates an event by when rules
        # applied that version to the company (its result's history), which is stable
        applied = [_when(e["changed_at"]) for e in history if e["policy_version"] == version]
        return PolicyDeadline(
            policy_id=row.policy_id,
            policy_version=version,
            title=_title(document, access.locale),
            due_on=date.fromisoformat(str(ends)[:10]),
            policy_url=policy_url(site, row.policy_id),
            published_at=max(applied)
            if applied
            else datetime.fromisoformat("1970-01-01T00:00:00+00:00"),
            amount_cny=row.amount_cny,
        )

    found = await asyncio.gather(*(deadline(r) for r in best.values()))
    return deadline_calendar(
        str(enterprise["name"]),
        [d for d in found if d is not None],
        locale=cast(Locale, access.locale),
    )


async def changes(
    services: Services, access: FeedAccess, *, site: str, feed_url: str, describe: Describe
) -> bytes:
    """Every change of the company's results (each an eligibility.changed event)."""
    key, enterprise_id = access.api_key, access.enterprise_id
    enterprise, rows = await asyncio.gather(
        services.enterprise(key, enterprise_id), eligibility_rows(services, key, enterprise_id)
    )
    watched = rows[:HISTORIES_READ]
    histories = await asyncio.gather(
        *(services.history(key, r.subject_id, r.policy_id) for r in watched)
    )
    versions = {
        (r.policy_id, int(e["policy_version"]))
        for r, h in zip(watched, histories, strict=True)
        for e in h
    }
    documents = dict(
        zip(
            versions,
            await asyncio.gather(*(services.policy_version(key, p, v) for p, v in versions)),
            strict=True,
        )
    )
    entries = [
        FeedEntry(
            event_id=str(entry["event_id"]),
            policy_id=row.policy_id,
            policy_version=int(entry["policy_version"]),
            policy_title=_title(
                documents[(row.policy_id, int(entry["policy_version"]))], access.locale
            ),
            summary=describe(row, entry),
            occurred_at=_when(entry["changed_at"]),
            policy_url=policy_url(site, row.policy_id),
        )
        for row, history in zip(watched, histories, strict=True)
        for entry in history
    ]
    return changes_feed(
        str(enterprise["name"]), entries, feed_url=feed_url, locale=cast(Locale, access.locale)
    )
