"""The portal's feeds, read back by the libraries that parse them (icalendar, feedparser)
and checked for what RFC 5545 and RFC 4287 require."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import feedparser
import pytest
from icalendar import Calendar, Component

from reelpolicy_portal.domain.feeds import (
    FeedEntry,
    PolicyDeadline,
    changes_feed,
    deadline_calendar,
)

COMPANY = "上海星光影业有限公司"
FEED_URL = "http://127.0.0.1:8005/feeds/s3cr3t/changes.atom"
ATOM = "{http://www.w3.org/2005/Atom}"

YANGPU = PolicyDeadline(
    policy_id="sh-yangpu-office",
    policy_version=3,
    title="杨浦区影视产业办公用房支持（购置、租赁；择优）",
    due_on=date(2026, 12, 31),
    policy_url="http://127.0.0.1:8005/policies/sh-yangpu-office",
    published_at=datetime(2026, 11, 1, 16, 30, tzinfo=UTC),
    amount_cny=3_000_000,
)
SONGJIANG = PolicyDeadline(
    policy_id="sh-songjiang-film",
    policy_version=1,
    title='Songjiang film base, grants; for "micro dramas"',
    due_on=date(2027, 3, 15),
    policy_url="http://127.0.0.1:8005/policies/sh-songjiang-film",
    published_at=datetime(2026, 10, 2, 9, 0, tzinfo=UTC),
)


def events_of(ics: bytes) -> dict[str, Component]:
    calendar = Calendar.from_ical(ics)
    return {str(e["UID"]): e for e in calendar.walk("VEVENT")}


def test_one_all_day_event_per_deadline_with_what_rfc_5545_requires() -> None:
    ics = deadline_calendar(COMPANY, [YANGPU, SONGJIANG], locale="zh-CN")
    calendar = Calendar.from_ical(ics)
    assert str(calendar["VERSION"]) == "2.0"
    assert str(calendar["PRODID"])
    assert str(calendar["X-WR-CALNAME"]) == f"{COMPANY}：政策截止日期"
    events = calendar.walk("VEVENT")
    assert len(events) == 2
    by_uid = {str(e["UID"]): e for e in events}
    assert len(by_uid) == 2
    yangpu = by_uid["policy-deadline-sh-yangpu-office@reelpolicy"]
    # all day: DATE values (not DATE-TIME), ending the next day (RFC 5545 3.6.1)
    assert yangpu.decoded("DTSTART") == date(2026, 12, 31)
    assert not isinstance(yangpu.decoded("DTSTART"), datetime)
    assert yangpu.decoded("DTEND") == date(2027, 1, 1)
    assert yangpu.decoded("DTSTAMP") == YANGPU.published_at
    assert yangpu.decoded("DTSTAMP").tzinfo is not None  # UTC, as DTSTAMP must be
    assert yangpu.decoded("SEQUENCE") == 3
    assert str(yangpu["SUMMARY"]) == f"政策截止：{YANGPU.title}"
    description = str(yangpu["DESCRIPTION"])
    assert "2026年12月31日" in description
    assert "¥3,000,000" in description
    assert description.endswith(YANGPU.policy_url)
    assert str(yangpu["URL"]) == YANGPU.policy_url
    songjiang = by_uid["policy-deadline-sh-songjiang-film@reelpolicy"]
    assert str(songjiang["SUMMARY"]) == f"政策截止：{SONGJIANG.title}"  # , ; " survive
    assert "¥" not in str(songjiang["DESCRIPTION"])  # no amount given, none made up


def test_calendar_lines_are_crlf_and_folded_to_75_octets() -> None:
    long_title = replace(YANGPU, title="杨浦区" * 60)
    ics = deadline_calendar(COMPANY, [long_title], locale="zh-CN")
    assert ics.endswith(b"\r\n")
    lines = ics.split(b"\r\n")[:-1]
    assert all(b"\n" not in line and b"\r" not in line for line in lines)
    assert max(len(line) for line in lines) <= 75
    assert str(Calendar.from_ical(ics).walk("VEVENT")[0]["SUMMARY"]).endswith("杨浦区" * 60)


def test_the_english_calendar() -> None:
    ics = deadline_calendar("Star Media", [YANGPU], locale="en")
    (event,) = Calendar.from_ical(ics).walk("VEVENT")
    assert str(event["SUMMARY"]) == f"Policy deadline: {YANGPU.title}"
    assert "December 31, 2026" in str(event["DESCRIPTION"])
    assert "3,000,000" in str(event["DESCRIPTION"])
    assert "Star Media" in str(event["DESCRIPTION"])


def test_uids_are_stable_so_calendar_apps_update_not_duplicate() -> None:
    first = deadline_calendar(COMPANY, [YANGPU, SONGJIANG], locale="zh-CN")
    assert deadline_calendar(COMPANY, [SONGJIANG, YANGPU], locale="zh-CN") == first
    moved = replace(YANGPU, policy_version=4, due_on=date(2027, 6, 30))
    later = events_of(deadline_calendar(COMPANY, [moved, SONGJIANG], locale="zh-CN"))
    before = events_of(first)
    assert set(later) == set(before)
    uid = "policy-deadline-sh-yangpu-office@reelpolicy"
    assert later[uid].decoded("SEQUENCE") > before[uid].decoded("SEQUENCE")
    assert later[uid].decoded("DTSTART") == date(2027, 6, 30)


def test_two_deadlines_of_one_policy_are_refused() -> None:
    with pytest.raises(ValueError, match="one deadline per policy"):
        deadline_calendar(COMPANY, [YANGPU, replace(YANGPU, due_on=date(2027, 1, 1))], locale="en")


def change(event_id: str, minutes: int, **overrides: object) -> FeedEntry:
    values: dict[str, object] = {
        "event_id": event_id,
        "policy_id": "sh-yangpu-office",
        "policy_version": 3,
        "policy_title": "杨浦区办公用房支持",
        "summary": "购置补贴上限由 2,000,000 元提高到 3,000,000 元 <见原文>",
        "occurred_at": datetime(2026, 11, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=minutes),
        "policy_url": "http://127.0.0.1:8005/policies/sh-yangpu-office",
    }
    return FeedEntry(**{**values, **overrides})


OLDER = "0193a4c2-7d1e-7c3a-9f10-5b2e8d4c6a01"
NEWER = "0193a4c2-9e00-7000-8000-000000000002"


def test_atom_feed_round_trips_with_what_rfc_4287_requires() -> None:
    entries = [change(OLDER, 0), change(NEWER, 90, policy_version=4, summary="新增租赁补贴")]
    xml = changes_feed(COMPANY, entries, feed_url=FEED_URL, locale="zh-CN")

    parsed = feedparser.parse(xml)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.id == FEED_URL
    assert parsed.feed.title == f"{COMPANY}：相关政策变更"
    assert parsed.feed.language == "zh-CN"
    assert [link.href for link in parsed.feed.links if link.rel == "self"] == [FEED_URL]
    assert parsed.feed.updated_parsed[:5] == (2026, 11, 1, 9, 30)  # the newest entry's
    assert [e.id for e in parsed.entries] == [f"urn:uuid:{NEWER}", f"urn:uuid:{OLDER}"]
    newest = parsed.entries[0]
    assert newest.title == "杨浦区办公用房支持（第4版）"
    assert newest.summary == "新增租赁补贴"
    assert newest.link == "http://127.0.0.1:8005/policies/sh-yangpu-office"
    assert parsed.entries[1].summary.endswith("<见原文>")  # text, escaped and read back

    # RFC 4287 4.1.1 / 4.1.2: exactly one id, title and updated each; an author for all
    root = ET.fromstring(xml)
    assert root.tag == f"{ATOM}feed"
    for element in (root, *root.findall(f"{ATOM}entry")):
        for required in ("id", "title", "updated"):
            assert len(element.findall(f"{ATOM}{required}")) == 1, (element.tag, required)
        updated = element.find(f"{ATOM}updated")
        assert updated is not None
        assert updated.text is not None
        assert datetime.fromisoformat(updated.text).tzinfo is not None  # RFC 3339
    assert root.find(f"{ATOM}author/{ATOM}name") is not None


def test_entry_ids_come_from_event_ids_so_readers_do_not_duplicate() -> None:
    once = changes_feed(COMPANY, [change(OLDER, 0)], feed_url=FEED_URL, locale="en")
    twice = changes_feed(
        COMPANY, [change(OLDER, 0), change(OLDER.upper(), 0)], feed_url=FEED_URL, locale="en"
    )
    assert twice == once  # the same event delivered again is the same entry
    grown = changes_feed(
        COMPANY, [change(NEWER, 5), change(OLDER, 0)], feed_url=FEED_URL, locale="en"
    )
    ids = [e.id for e in feedparser.parse(grown).entries]
    assert ids == [f"urn:uuid:{NEWER}", f"urn:uuid:{OLDER}"]
    assert feedparser.parse(grown).entries[0].title == "杨浦区办公用房支持 (version 3)"
    with pytest.raises(ValueError, match="event_id is a UUID"):
        changes_feed(COMPANY, [change("not-an-event-id", 0)], feed_url=FEED_URL, locale="en")


def test_an_empty_feed_is_still_valid_atom() -> None:
    parsed = feedparser.parse(changes_feed("Star Media", [], feed_url=FEED_URL, locale="en"))
    assert not parsed.bozo
    assert parsed.feed.title == "Star Media: policy changes"
    assert parsed.feed.updated_parsed[:3] == (1970, 1, 1)
    assert parsed.entries == []
