"""The shortened switch interval: in force inside, restored after, overlaps safe."""

from __future__ import annotations

import sys

import pytest

from reelpolicy_common.switch_interval import short_switch_interval


def test_interval_is_short_inside_and_restored_after_overlapping_blocks() -> None:
    before = sys.getswitchinterval()
    first = short_switch_interval(0.0005)
    second = short_switch_interval(0.001)
    first.__enter__()
    second.__enter__()  # overlaps (another import): the shorter one stays in force
    assert sys.getswitchinterval() == pytest.approx(0.0005)
    first.__exit__(None, None, None)
    assert sys.getswitchinterval() == pytest.approx(0.0005)  # the other still runs
    second.__exit__(None, None, None)
    assert sys.getswitchinterval() == before


def test_interval_is_restored_after_an_error() -> None:
    before = sys.getswitchinterval()
    with pytest.raises(RuntimeError), short_switch_interval():
        raise RuntimeError("boom")
    assert sys.getswitchinterval() == before
