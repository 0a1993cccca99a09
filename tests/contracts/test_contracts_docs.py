"""docs/events.md names every event type with its topic (the table is hand-written)."""

from __future__ import annotations

import re

from contracts_files import ROOT

from reelpolicy_contracts import catalog, topics
from reelpolicy_contracts.events import EventType

DOC = ROOT / "docs" / "events.md"


def test_the_table_names_every_event_type_on_its_topic() -> None:
    rows = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = re.match(r"\| `([a-z_.]+)` \| `([a-z0-9.]+)`", line)
        if match:
            rows[match[1]] = match[2]
    assert rows == {e.type.value: e.topic for e in catalog.EVENTS}
    assert set(rows) == {t.value for t in EventType}


def test_it_names_every_main_topic_and_the_rules() -> None:
    text = DOC.read_text(encoding="utf-8")
    for topic in (*topics.MAIN_TOPICS, topics.SNAPSHOTS, topics.ELIGIBILITY_STATE):
        assert f"`{topic}`" in text, topic
    for rule in ("remove a field", "change a field's type", "make an optional field required"):
        assert rule in text, rule
