"""``LISTEN`` on a pooled connection that sets an event, and comes back after a drop."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import asyncpg


class NotifyListener:
    """Holds one pooled connection listening on ``channel``; ``wake`` is set per NOTIFY.

    Call :meth:`ensure` before waiting (it re-listens if the connection was lost) and
    :meth:`drop` after a database error or on shutdown.
    """

    def __init__(self, pool: asyncpg.Pool, channel: str, wake: asyncio.Event) -> None:
        self._pool = pool
        self._channel = channel
        self._wake = wake
        self._conn: Any = None

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def ensure(self) -> None:
        if self._conn is not None and not self._conn.is_closed():
            return
        conn = await self._pool.acquire()
        try:
            await conn.add_listener(self._channel, self._on_notify)
        except BaseException:
            # Cancelled (shutdown) or failed before it was ours to drop: give it back, or
            # Pool.close() waits for it forever.
            await self._pool.release(conn)
            raise
        self._conn = conn

    async def drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        with contextlib.suppress(Exception):
            await conn.remove_listener(self._channel, self._on_notify)
        with contextlib.suppress(Exception):
            await self._pool.release(conn)
