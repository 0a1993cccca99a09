"""The collector pause: overlapping pauses, and no resuming a collector that was off."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from reelpolicy_common.gc_control import freeze_startup_objects, gc_paused


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    was = gc.isenabled()
    yield
    (gc.enable if was else gc.disable)()


def test_collector_is_off_inside_and_back_after_an_error() -> None:
    gc.enable()
    seen = []

    def fail_while_paused() -> None:
        with gc_paused():
            seen.append(gc.isenabled())
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_while_paused()
    assert seen == [False]
    assert gc.isenabled()


def test_overlapping_pauses_resume_only_when_the_last_ends() -> None:
    gc.enable()
    first, second = gc_paused(), gc_paused()
    first.__enter__()
    second.__enter__()
    first.__exit__(None, None, None)  # ends before the second: still paused
    assert not gc.isenabled()
    second.__exit__(None, None, None)
    assert gc.isenabled()


def test_a_collector_disabled_before_stays_disabled() -> None:
    gc.disable()
    with gc_paused():
        pass
    assert not gc.isenabled()


def test_freezing_moves_live_objects_out_of_the_collectors_sight() -> None:
    keep = [[i] for i in range(1000)]  # container objects the collector tracks
    gc.unfreeze()
    try:
        freeze_startup_objects()
        assert gc.get_freeze_count() >= len(keep)
        assert all(gc.is_tracked(x) for x in keep)
    finally:
        gc.unfreeze()
