"""The session pruner's loop without a database: a failing pass does not end it."""

from __future__ import annotations

import asyncio
import contextlib

from reelpolicy_portal.handlers.session_pruning import prune_sessions_forever
from service_harness import eventually


class FlakySessions:
    """delete_expired raises on its first call (a database outage), then works."""

    def __init__(self) -> None:
        self.calls = 0

    async def delete_expired(self) -> int:
        self.calls += 1
        if self.calls == 1:
            raise ConnectionError("database unreachable")
        return 2


async def test_a_failed_pass_is_logged_and_the_next_one_follows() -> None:
    sessions = FlakySessions()
    pruning = asyncio.create_task(
        prune_sessions_forever(sessions, every_seconds=0.01)  # type: ignore[arg-type]
    )
    try:
        await eventually(lambda: sessions.calls >= 3, timeout=30)
        assert not pruning.done()
    finally:
        pruning.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pruning
