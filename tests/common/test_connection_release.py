"""A connection taken from the pool goes back to it when the taker is cancelled midway.

Shutdown cancels the tasks that hold connections; a connection acquired but not yet
handed to its owner would never be released, and ``Pool.close()`` would wait forever.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
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


class BrokenRollback:
    """A connection whose rollback fails, as one cancelled in the middle of a statement."""

    def __init__(self) -> None:
        self.terminated = False

    def transaction(self) -> BrokenRollback:
        return self

    async def start(self) -> None:
        return None

    async def rollback(self) -> None:
        raise asyncpg.InterfaceError("cannot perform operation: another operation is in progress")

    def terminate(self) -> None:
        self.terminated = True


class OnePool:
    def __init__(self, conn: BrokenRollback) -> None:
        self.conn, self.released = conn, False

    async def acquire(self) -> BrokenRollback:
        return self.conn

    async def release(self, conn: BrokenRollback) -> None:
        self.released = True


async def test_a_failed_rollback_does_not_hide_the_cancellation_that_caused_it() -> None:
    """A loop that catches Exception (the rules scheduler) and is cancelled at shutdown
    must see the cancellation, or it loops on and the shutdown never ends."""
    pool = OnePool(BrokenRollback())
    with pytest.raises(asyncio.CancelledError):
        async with PostgresUnitOfWork(pool):  # type: ignore[arg-type]
            raise asyncio.CancelledError
    assert pool.released
    assert pool.conn.terminated  # its state is unknown: the session goes


async def test_a_failed_rollback_after_a_clean_body_is_raised() -> None:
    pool = OnePool(BrokenRollback())
    with pytest.raises(asyncpg.InterfaceError):
        async with PostgresUnitOfWork(pool):  # type: ignore[arg-type]
            pass
    assert pool.released
