"""Connection pools. JSON and JSONB columns decode to Python objects and encode from
them; a ``bytes`` value is taken as JSON encoded already (UTF-8) and sent as it is, so a
bulk writer that has the text need not build objects to have it encoded again.

The codecs are pydantic-core's JSON (Rust), several times faster than the standard
library's ``json``: the bulk paths (a policy change's results, history and outbox rows)
encode and decode JSONB columns by the hundred thousand.

A database that goes away must show as an error, not as a wait without end (a consumer
waits out errors of the infrastructure, but only those it sees): connecting has a
timeout, a service's statements have one (a frozen server, or a dead path whose
packets something in between still acknowledges), and TCP keepalive with a user
timeout closes a connection whose peer stopped answering, idle or busy. See
:class:`ConnectionLimits`.
"""

from __future__ import annotations

import contextlib
import functools
import socket
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic_core import from_json, to_json

from reelpolicy_common.settings import ServiceSettings


def _encode_jsonb(value: Any) -> bytes:
    if isinstance(value, bytes):  # encoded JSON already
        return b"\x01" + value
    return b"\x01" + to_json(value)


def _decode_jsonb(data: bytes) -> Any:
    return from_json(data[1:])


def _encode_json(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    return to_json(value)


@dataclass(frozen=True)
class ConnectionLimits:
    """How soon a database that stopped answering turns into an error."""

    connect_timeout_seconds: float = 10.0
    command_timeout_seconds: float | None = None
    """Per statement (a call's own ``timeout=`` overrides it); services set one
    (``DATABASE_COMMAND_TIMEOUT_SECONDS``), one-off commands may run long statements."""
    tcp_keepalive_seconds: int = 10
    """Idle time before the first probe; also the probe interval. Three unanswered
    probes, or data unacknowledged for three times this, close the connection."""

    @classmethod
    def from_settings(cls, settings: ServiceSettings) -> ConnectionLimits:
        """The limits a service's settings ask for (``DATABASE_*``)."""
        return cls(
            connect_timeout_seconds=settings.database_connect_timeout_seconds,
            command_timeout_seconds=settings.database_command_timeout_seconds or None,
            tcp_keepalive_seconds=settings.database_tcp_keepalive_seconds,
        )


def _set_keepalive(conn: asyncpg.Connection, *, seconds: int) -> None:
    """Keepalive and a user timeout on a TCP connection (a unix socket needs none)."""
    transport = getattr(conn, "_transport", None)  # asyncpg exposes no public socket
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None or sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    options = [
        (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPIDLE", None), seconds),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPINTVL", None), seconds),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_KEEPCNT", None), 3),
        (socket.IPPROTO_TCP, getattr(socket, "TCP_USER_TIMEOUT", None), seconds * 3000),
    ]
    for level, option, value in options:
        if option is not None:  # not every platform has each option
            with contextlib.suppress(OSError):
                sock.setsockopt(level, option, value)


async def _init_connection(conn: asyncpg.Connection, *, limits: ConnectionLimits) -> None:
    _set_keepalive(conn, seconds=limits.tcp_keepalive_seconds)
    await _init_codecs(conn)


async def _init_codecs(conn: asyncpg.Connection) -> None:
    # Binary codecs, so COPY (binary) works for json columns too.
    await conn.set_type_codec(
        "jsonb", encoder=_encode_jsonb, decoder=_decode_jsonb, schema="pg_catalog", format="binary"
    )
    await conn.set_type_codec(
        "json",
        encoder=_encode_json,
        decoder=from_json,
        schema="pg_catalog",
        format="binary",
    )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """Release without asyncpg's default reset query (one more round trip per use).

    That query (``pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL``) undoes
    session state, and the services keep none on pooled connections: advisory locks
    are transaction-scoped, settings are ``SET LOCAL``, cursors live in transactions
    and :class:`~reelpolicy_common.db.listen.NotifyListener` unlistens itself. asyncpg
    still rolls back an open transaction and drops Python-side listeners on release.
    """


async def create_pool(
    dsn: str, *, min_size: int = 1, max_size: int = 10, limits: ConnectionLimits | None = None
) -> asyncpg.Pool:
    """Open a pool whose connections encode/decode json and jsonb."""
    limits = limits or ConnectionLimits()
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=functools.partial(_init_connection, limits=limits),
        reset=_keep_session,
        timeout=limits.connect_timeout_seconds,
        command_timeout=limits.command_timeout_seconds,
    )
    return pool


async def create_service_pool(settings: ServiceSettings) -> asyncpg.Pool:
    """A service's pool, sized and limited by its settings."""
    return await create_pool(
        settings.database_url,
        min_size=settings.database_pool_min,
        max_size=settings.database_pool_max,
        limits=ConnectionLimits.from_settings(settings),
    )


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **kwargs)
    await _init_connection(conn, limits=ConnectionLimits())
    return conn
