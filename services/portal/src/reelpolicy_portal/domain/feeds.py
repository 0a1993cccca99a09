"""Feeds a person subscribes to: policy deadlines as iCalendar, policy changes as Atom.

Both are pure: the same input gives the same bytes (no clock is read), so a feed can
carry an ETag and calendar apps and feed readers see only real changes.

- :func:`deadline_calendar`: RFC 5545, one all-day ``VEVENT`` per policy deadline. Its
  ``UID`` names the policy, not the date, and its ``SEQUENCE`` is the policy version: a
  calendar app moves the event when a new version moves the deadline instead of adding
  a second one. ``DTSTAMP`` and ``LAST-MODIFIED`` are when that version was published.
- :func:`changes_feed`: RFC 4287 Atom 1.0, one entry per change event, its ``id`` the
  event id (``urn:uuid:``), newest first; the feed is as new as its newest entry.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from babel.dates import format_date
from babel.numbers import format_currency
from feedgen.feed import FeedGenerator  # type: ignore[import-untyped]
from icalendar import Calendar, Event, vDuration

Locale = Literal["zh-CN", "en"]

PRODUCT_ID = "-//reelpolicy//portal feeds//EN"
UID_DOMAIN = "reelpolicy"
"""The right-hand side of every event's UID (RFC 5545 3.8.4.7: globally unique)."""
REFRESH_INTERVAL = timedelta(hours=6)
"""How often a calendar app should fetch the feed again (RFC 7986 REFRESH-INTERVAL)."""
EMPTY_FEED_UPDATED = datetime(1970, 1, 1, tzinfo=UTC)
"""An Atom feed with no entries has changed never: its ``updated`` (RFC 4287 needs one)."""


@dataclass(frozen=True)
class PolicyDeadline:
    """The last day of a policy the company is eligible for (its effective window's end)."""

    policy_id: str
    policy_version: int
    title: str
    due_on: date
    policy_url: str
    published_at: datetime
    """When this policy version was published: the event's DTSTAMP and LAST-MODIFIED."""
    amount_cny: int | None = None
    """What the company is eligible for under the policy, when the policy says."""


@dataclass(frozen=True)
class FeedEntry:
    """A change of a policy that affects the company, as the event that announced it."""

    event_id: str
    """The change event's id (a UUID): the entry's permanent id."""
    policy_id: str
    policy_version: int
    policy_title: str
    summary: str
    """What changed, in plain language."""
    occurred_at: datetime
    policy_url: str


_TEXTS: dict[Locale, dict[str, str]] = {
    "zh-CN": {
        "calendar": "{company}：政策截止日期",
        "calendar_description": "{company}符合条件的政策的截止日期",
        "summary": "政策截止：{title}",
        "description": "{company}符合条件的政策“{title}”（第{version}版）于{date}截止。",
        "amount": "可获支持：{amount}。",
        "sentence_gap": "",
        "feed": "{company}：相关政策变更",
        "feed_subtitle": "影响{company}的政策变更",
        "entry": "{title}（第{version}版）",
    },
    "en": {
        "calendar": "{company}: policy deadlines",
        "calendar_description": "Deadlines of the policies {company} is eligible for",
        "summary": "Policy deadline: {title}",
        "description": "{title} (version {version}), which {company} is eligible for,"
        " closes on {date}.",
        "amount": "Eligible amount: {amount}.",
        "sentence_gap": " ",
        "feed": "{company}: policy changes",
        "feed_subtitle": "Changes of the policies that affect {company}",
        "entry": "{title} (version {version})",
    },
}


def _babel(locale: Locale) -> str:
    return "zh_CN" if locale == "zh-CN" else "en"


def _cny(amount: int, locale: Locale) -> str:
    # the same form as the portal's pages: whole yuan with thousands separators
    return format_currency(
        amount, "CNY", format="¤#,##0", locale=_babel(locale), currency_digits=False
    )


def _event(
    company_name: str, deadline: PolicyDeadline, texts: dict[str, str], locale: Locale
) -> Event:
    when = format_date(deadline.due_on, format="long", locale=_babel(locale))
    description = texts["description"].format(
        company=company_name, title=deadline.title, version=deadline.policy_version, date=when
    )
    if deadline.amount_cny is not None:
        description += texts["sentence_gap"] + texts["amount"].format(
            amount=_cny(deadline.amount_cny, locale)
        )
    event = Event()
    event.add("uid", f"policy-deadline-{deadline.policy_id}@{UID_DOMAIN}")
    event.add("sequence", deadline.policy_version)
    event.add("dtstamp", deadline.published_at.astimezone(UTC))
    event.add("last-modified", deadline.published_at.astimezone(UTC))
    event.add("dtstart", deadline.due_on)
    event.add("dtend", deadline.due_on + timedelta(days=1))
    event.add("summary", texts["summary"].format(title=deadline.title))
    event.add("description", f"{description}\n{deadline.policy_url}")
    event.add("url", deadline.policy_url)
    event.add("transp", "TRANSPARENT")  # a deadline does not make anyone busy
    return event


def deadline_calendar(
    company_name: str, deadlines: Sequence[PolicyDeadline], *, locale: Locale
) -> bytes:
    """An iCalendar of the deadlines, one all-day event per policy (at most one each)."""
    policy_ids = [d.policy_id for d in deadlines]
    if len(set(policy_ids)) != len(policy_ids):
        raise ValueError("one deadline per policy: its events share a UID")
    texts = _TEXTS[locale]
    calendar = Calendar()
    calendar.add("prodid", PRODUCT_ID)
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    name = texts["calendar"].format(company=company_name)
    calendar.add("name", name)
    calendar.add("x-wr-calname", name)  # the name most calendar apps read
    calendar.add("description", texts["calendar_description"].format(company=company_name))
    calendar.add("refresh-interval", REFRESH_INTERVAL, parameters={"VALUE": "DURATION"})
    calendar.add("x-published-ttl", vDuration(REFRESH_INTERVAL))  # the older name of it
    for deadline in sorted(deadlines, key=lambda d: (d.due_on, d.policy_id)):
        calendar.add_component(_event(company_name, deadline, texts, locale))
    ical: bytes = calendar.to_ical()
    return ical


def _entry_id(event_id: str) -> str:
    try:
        return uuid.UUID(event_id).urn
    except ValueError:
        raise ValueError(f"an entry's event_id is a UUID, not {event_id!r}") from None


def changes_feed(
    company_name: str, changes: Sequence[FeedEntry], *, feed_url: str, locale: Locale
) -> bytes:
    """An Atom feed of the changes, newest first (an event given twice is one entry)."""
    texts = _TEXTS[locale]
    unique = {_entry_id(c.event_id): c for c in changes}
    newest_first = sorted(unique.items(), key=lambda item: (item[1].occurred_at, item[0]))
    newest_first.reverse()
    feed = FeedGenerator()
    feed.id(feed_url)
    feed.title(texts["feed"].format(company=company_name))
    feed.subtitle(texts["feed_subtitle"].format(company=company_name))
    feed.author({"name": "reelpolicy"})
    feed.link(href=feed_url, rel="self", type="application/atom+xml")
    feed.language(locale)
    feed.generator("reelpolicy")
    feed.updated(newest_first[0][1].occurred_at if newest_first else EMPTY_FEED_UPDATED)
    for entry_id, change in newest_first:
        entry = feed.add_entry(order="append")
        entry.id(entry_id)
        entry.title(texts["entry"].format(title=change.policy_title, version=change.policy_version))
        entry.updated(change.occurred_at)
        entry.link(href=change.policy_url, rel="alternate", type="text/html")
        entry.summary(change.summary)
    xml: bytes = feed.atom_str(pretty=True, encoding="UTF-8")
    return xml
