"""The interpreter's thread switch interval, shortened around bulk work.

The registry import validates a chunk in a worker thread while the event loop feeds
the chunks before it to PostgreSQL. Each socket call of the loop releases the GIL;
getting it back from a thread that is busy computing takes up to the switch interval
(5 ms by default), and meanwhile the database waits for data: a convoy. A shorter
interval hands the GIL back to the loop sooner, so the database is kept busy.

Shortening is process-wide: other threads switch more often too, which costs little
(a switch is a few microseconds). Overlapping ``with`` blocks are safe: the interval
in force when the first began is restored when the last ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager

BULK_SWITCH_INTERVAL = 0.0005  # seconds
_active = 0
_restore = 0.0


@contextmanager
def short_switch_interval(seconds: float = BULK_SWITCH_INTERVAL) -> Iterator[None]:
    """Use at most ``seconds`` as the switch interval for the ``with`` block."""
    global _active, _restore
    if _active == 0:
        _restore = sys.getswitchinterval()
        sys.setswitchinterval(min(seconds, _restore))
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0:
            sys.setswitchinterval(_restore)
