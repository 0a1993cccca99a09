"""The principal cache: a hit within the time to live, a miss after it or after a key change."""

from __future__ import annotations

from reelpolicy_common.auth import Principal
from reelpolicy_common.auth_cache import PrincipalCache, api_keys_changed, key_generation

ACME = Principal("k1", "company", "e1")


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_checked_key_is_remembered_for_the_time_to_live() -> None:
    clock = Clock()
    cache = PrincipalCache(ttl_seconds=5, clock=clock)
    cache.put("h", ACME, generation=key_generation())
    clock.now += 4.9
    assert cache.get("h") == ACME
    clock.now += 0.1
    assert cache.get("h") is None


def test_any_key_change_in_the_process_forgets_every_key() -> None:
    cache = PrincipalCache(ttl_seconds=60)
    cache.put("h", ACME, generation=key_generation())
    api_keys_changed()
    assert cache.get("h") is None


def test_a_lookup_that_raced_a_key_change_is_not_remembered() -> None:
    cache = PrincipalCache(ttl_seconds=60)
    before = key_generation()  # the lookup starts, then a key is revoked
    api_keys_changed()
    cache.put("h", ACME, generation=before)
    assert cache.get("h") is None


def test_zero_time_to_live_remembers_nothing_and_the_size_is_bounded() -> None:
    off = PrincipalCache(ttl_seconds=0)
    off.put("h", ACME, generation=key_generation())
    assert off.get("h") is None
    small = PrincipalCache(ttl_seconds=60, max_entries=2)
    for name in ("a", "b", "c"):
        small.put(name, ACME, generation=key_generation())
    assert small.get("c") == ACME
    assert small.get("a") is None
