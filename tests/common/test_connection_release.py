"""A connection taken from the pool goes back to it when the taker is cancelled midway.

Shutdown cancels the tasks that hold connections; a connection acquired but not yet
handed to its owner would never be released, and ``Pool.close()`` would wait forever.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from reelpolicy_common.db.listen import NotifyListener
from reelpolicy_common.uow import PostgresUnitOfWork


class StuckConnection:
    """Every statement waits until cancelled."""

    async def add_listener(self, *_: Any) -> None:
        await asyncio.Event().wait()

    def transaction(self) -> StuckConnection:
        return self

    async def start(self) -> None:
        await asyncio.Event().wait()

    def is_closed(self) -> bool:
        return False


class CountingPool:
    def __init__(self) -> None:
        self.out: list[StuckConnection] = []

    async def acquire(self) -> StuckConnection:
        conn = StuckConnection()
        self.out.append(conn)
        return conn

    async def release(self, conn: StuckConnection) -> None:
        self.out.remove(conn)


async def cancelled_midway(start: Any) -> None:
    task = asyncio.create_task(start())
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_listener_cancelled_while_listening_returns_its_connection() -> None:
    pool = CountingPool()
    listener = NotifyListener(pool, "channel", asyncio.Event())  # type: ignore[arg-type]
    await cancelled_midway(listener.ensure)
    assert pool.out == []


async def test_a_unit_of_work_cancelled_while_beginning_returns_its_connection() -> None:
    pool = CountingPool()
    uow = PostgresUnitOfWork(pool)  # type: ignore[arg-type]
    await cancelled_midway(uow.__aenter__)
    assert pool.out == []
