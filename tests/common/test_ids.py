"""Time-ordered ids (UUIDv7): the shape RFC 9562 gives them and their order in time; and
derived ids (UUIDv8): the same input, the same id."""

from __future__ import annotations

import time
import uuid

from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_contracts.ids import derived_id, uuid7


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


def test_derived_ids_are_a_function_of_their_parts() -> None:
    one = derived_id("sub", "alert-key", prefix=1_700_000_000_000)
    assert one == derived_id("sub", "alert-key", prefix=1_700_000_000_000)
    assert one.version == 8
    assert one.variant == uuid.RFC_4122
    assert one.int >> 80 == 1_700_000_000_000  # milliseconds first: ordered like a UUIDv7
    others = {
        derived_id("sub", "other-key", prefix=1_700_000_000_000),
        derived_id("sub2", "alert-key", prefix=1_700_000_000_000),
        derived_id("sub", "alert", "-key", prefix=1_700_000_000_000),  # parts are separated
    }
    assert one not in others
    assert len(others) == 3


def test_derived_ids_of_one_text_prefix_share_their_first_48_bits() -> None:
    a, b = (derived_id("cause", change, prefix="cause") for change in ("x", "y"))
    assert a != b
    assert a.int >> 80 == b.int >> 80
    assert derived_id("cause", "x", prefix="other").int >> 80 != a.int >> 80
