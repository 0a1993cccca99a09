"""Python's cyclic garbage collector: paused around bulk work, told to skip start-up objects.

The bulk paths (the registry import, the rules bulk evaluation and its writes)
allocate hundreds of thousands of small container objects (validated rows, change
dicts, tuples for ``COPY``) that all stay alive until the batch is written. Each of
them counts towards the collector's thresholds, so it runs over and over, and every
older-generation pass walks every object still alive: a large share of the batch's
time goes to collections that find nothing. These objects hold
no reference cycles, so reference counting frees them anyway; pausing the collector
for the batch loses nothing, and it resumes (with its usual thresholds) afterwards.

Pauses may overlap (two imports at once): the collector resumes when the last one
ends, and only if it was enabled when the first began.

A service process holds about 100,000 long-lived objects once its app is built
(modules, FastAPI routes, pydantic schemas, OpenTelemetry and Prometheus registries);
each full collection walks them all, and every request in flight waits for it. :func:`freeze_startup_objects` moves them out of the collector's sight
(``gc.freeze``, as CPython's documentation suggests for long-running servers); objects
made later are collected as usual. ``reelpolicy-<service> serve`` calls it once the app
is built: it is a decision for the whole process, so not made where tests build apps.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

_active = 0
_resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Disable the cyclic collector for the ``with`` block (reference counting goes on)."""
    global _active, _resume
    if _active == 0:
        _resume = gc.isenabled()
        gc.disable()
    _active += 1
    try:
        yield
    finally:
        _active -= 1
        if _active == 0 and _resume:
            gc.enable()


def freeze_startup_objects() -> None:
    """Collect once, then exclude every object alive now from later collections."""
    gc.collect()
    gc.freeze()
