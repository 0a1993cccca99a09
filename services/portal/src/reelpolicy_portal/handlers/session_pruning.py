"""Expired sessions leave the database on a schedule, not only when a process starts
(a portal that runs for weeks would otherwise keep every session it ever opened, each
with an encrypted API key)."""

from __future__ import annotations

import asyncio
import logging

from reelpolicy_common.supervisor import heartbeat
from reelpolicy_portal.ports import SessionStore

log = logging.getLogger(__name__)

PRUNE_PASS_SECONDS = 60.0
"""The longest one pass may take before it is abandoned and the next one is awaited."""


async def prune_sessions_forever(sessions: SessionStore, *, every_seconds: float) -> None:
    """Delete expired sessions now and every ``every_seconds``, for good (a supervised
    background task). A pass that fails (the database unreachable) is logged and tried
    again at the next one: an expired session opens nothing meanwhile, since reading one
    checks its expiry."""
    while True:
        heartbeat(within=every_seconds + PRUNE_PASS_SECONDS)
        try:
            async with asyncio.timeout(PRUNE_PASS_SECONDS):
                deleted = await sessions.delete_expired()
            if deleted:
                log.info("deleted %d expired portal sessions", deleted)
        except Exception as exc:
            log.warning(
                "deleting expired sessions failed: %r; next try in %.0fs", exc, every_seconds
            )
        await asyncio.sleep(every_seconds)
