"""A unit of work on asyncpg: one connection, one transaction, explicit commit.

Handlers open it, use the service's repositories on ``uow.conn``, add events with
:meth:`publish` (they go to the outbox in the same transaction), and call
``await uow.commit()`` themselves. Leaving the block without committing rolls
back, so a failure leaves neither the state change nor its events. A long piece of
work may commit in steps: :meth:`begin` opens the next transaction on the same
connection, and :meth:`lock_across_commits` takes a lock that the steps share (it is
released when the block is left).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from types import TracebackType
from typing import Any, Protocol

import asyncpg

from reelpolicy_common.outbox.store import enqueue_many
from reelpolicy_contracts.events.envelope import Envelope

log = logging.getLogger(__name__)


class UnitOfWorkPort(Protocol):
    """What every service's unit-of-work port shares; services add their repositories
    (and ``__aenter__`` returning their own port type)."""

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...


class PublishingUnitOfWorkPort(UnitOfWorkPort, Protocol):
    """A unit of work whose changes emit events (through the outbox)."""

    def publish(self, topic: str, *envelopes: Envelope) -> None: ...

    async def publish_many(
        self, topic: str, envelopes: Sequence[Envelope], *, headers: Mapping[str, str] | None = None
    ) -> None: ...


class PostgresUnitOfWork:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: Any = None
        self._tx: Any = None
        self._events: list[tuple[str, Envelope]] = []
        self._session_locks = False

    @property
    def conn(self) -> asyncpg.Connection:
        if self._conn is None:
            raise RuntimeError("unit of work is not open")
        conn: asyncpg.Connection = self._conn
        return conn

    async def __aenter__(self) -> PostgresUnitOfWork:
        conn = await self._pool.acquire()
        try:
            tx = conn.transaction()
            await tx.start()
        except BaseException:
            # __aexit__ does not run when __aenter__ fails: give the connection back here.
            await self._pool.release(conn)
            raise
        self._conn, self._tx = conn, tx
        self._events = []
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        try:
            if self._tx is not None:
                await self._tx.rollback()
            if self._session_locks:
                await conn.execute("SELECT pg_advisory_unlock_all()")
        except BaseException as cleanup_error:
            if self._session_locks or exc is not None:
                # A lock it may still hold, or a statement cut off midway: the session goes.
                conn.terminate()
            if exc is not None and not isinstance(cleanup_error, asyncio.CancelledError):
                # What the body raised (above all a cancellation, which a loop catching
                # Exception must see to stop) propagates, not the failed cleanup it caused.
                log.warning("rollback failed after %r: %r", exc, cleanup_error)
                return
            raise
        finally:
            self._tx = None
            self._session_locks = False
            await self._pool.release(conn)

    async def begin(self) -> None:
        """Open the next transaction on the same connection, after :meth:`commit`."""
        if self._tx is not None:
            raise RuntimeError("a transaction is already open")
        self._tx = self.conn.transaction()
        await self._tx.start()

    async def lock_across_commits(self, lock_class: int, key: int) -> None:
        """Wait for the exclusive advisory lock ``(lock_class, key)`` and hold it until
        the unit of work closes, across :meth:`commit` and :meth:`begin` (a session
        lock: it conflicts with transaction-scoped advisory locks of the same key)."""
        self._session_locks = True
        await self.conn.execute("SELECT pg_advisory_lock($1, $2)", lock_class, key)

    def publish(self, topic: str, *envelopes: Envelope) -> None:
        """Queue events; they are written to the outbox at commit, in order."""
        self._events.extend((topic, e) for e in envelopes)

    async def publish_many(
        self, topic: str, envelopes: Sequence[Envelope], *, headers: Mapping[str, str] | None = None
    ) -> None:
        """Write many events to the outbox now (``COPY``), inside this transaction;
        ``headers`` go into each one's Kafka headers."""
        await enqueue_many(self.conn, topic=topic, envelopes=envelopes, headers=headers)

    async def commit(self) -> None:
        by_topic: list[tuple[str, list[Envelope]]] = []
        for topic, envelope in self._events:
            if by_topic and by_topic[-1][0] == topic:
                by_topic[-1][1].append(envelope)
            else:
                by_topic.append((topic, [envelope]))
        for topic, envelopes in by_topic:
            await enqueue_many(self.conn, topic=topic, envelopes=envelopes)
        self._events = []
        if self._tx is None:
            raise RuntimeError("unit of work is not open")
        await self._tx.commit()
        self._tx = None
