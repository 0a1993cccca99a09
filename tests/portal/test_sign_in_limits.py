"""The sliding window of failed sign-ins per client address (pure; the clock is given)."""

from __future__ import annotations

import pytest

from reelpolicy_portal.domain.sign_in_limits import FailedSignIns


def test_an_address_waits_once_it_reaches_the_limit_and_others_do_not() -> None:
    limits = FailedSignIns(limit=3, window_seconds=60)
    for second in (0.0, 10.0, 20.0):
        assert limits.retry_after("203.0.113.7", second) is None
        limits.record_failure("203.0.113.7", second)
    # the oldest failure (at 0) leaves the window at 60
    assert limits.retry_after("203.0.113.7", 25.0) == 35
    assert limits.retry_after("203.0.113.7", 59.5) == 1
    assert limits.retry_after("203.0.113.8", 25.0) is None


def test_the_window_slides() -> None:
    limits = FailedSignIns(limit=2, window_seconds=60)
    limits.record_failure("a", 0.0)
    limits.record_failure("a", 30.0)
    assert limits.retry_after("a", 45.0) == 15
    assert limits.retry_after("a", 60.0) is None  # the first left the window
    limits.record_failure("a", 61.0)
    assert limits.retry_after("a", 62.0) == 28  # the one at 30 now goes first, at 90
    assert limits.retry_after("a", 121.0) is None


def test_memory_is_bounded_by_forgetting_the_least_recent_address() -> None:
    limits = FailedSignIns(limit=1, window_seconds=60, max_addresses=2)
    limits.record_failure("first", 0.0)
    limits.record_failure("second", 1.0)
    limits.record_failure("third", 2.0)
    assert limits.retry_after("first", 3.0) is None
    assert limits.retry_after("second", 3.0) == 58
    assert limits.retry_after("third", 3.0) == 59


def test_a_limit_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        FailedSignIns(limit=0, window_seconds=60)
