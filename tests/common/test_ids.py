"""Time-ordered ids (UUIDv7): the shape RFC 9562 gives them and their order in time."""

from __future__ import annotations

import time
import uuid

from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_contracts.ids import uuid7


def test_uuid7_has_version_7_and_the_rfc_variant() -> None:
    value = uuid7()
    assert value.version == 7
    assert value.variant == uuid.RFC_4122


def test_uuid7_carries_the_unix_milliseconds_and_sorts_by_time() -> None:
    before = time.time_ns() // 1_000_000
    first = uuid7()
    time.sleep(0.002)
    second = uuid7()
    after = time.time_ns() // 1_000_000
    assert before <= first.int >> 80 <= (second.int >> 80) <= after
    assert first < second


def test_uuid7_values_are_unique_and_in_order_within_a_millisecond() -> None:
    ids = [uuid7() for _ in range(10_000)]
    assert len(set(ids)) == 10_000
    assert ids == sorted(ids)


def test_envelopes_get_time_ordered_event_ids() -> None:
    envelope = Envelope(type=EventType.policy_revoked, producer="test", key="p", payload={})
    assert envelope.event_id.version == 7
