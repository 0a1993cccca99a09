"""The worker processes that validate an import's rows beside the database writes."""

from __future__ import annotations

from concurrent.futures import Executor, ProcessPoolExecutor
from multiprocessing import get_context


def validation_processes(count: int) -> Executor | None:
    """A pool of ``count`` worker processes for
    :func:`reelpolicy_registry.domain.import_validation.validate_chunk` (None for 0: the
    import then validates in a thread). They start fresh (``spawn``: nothing of the
    parent's threads or sockets is inherited) when the first chunk is submitted."""
    if count == 0:
        return None
    return ProcessPoolExecutor(count, mp_context=get_context("spawn"))
