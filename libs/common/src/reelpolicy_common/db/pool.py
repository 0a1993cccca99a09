"""Connection pools. JSON and JSONB columns decode to Python objects and encode from
them; a ``bytes`` value is taken as JSON encoded already (UTF-8) and sent as it is, so a
bulk writer that has the text need not build objects to have it encoded again.

The codecs are pydantic-core's JSON (Rust): measured on a bulk policy change (100,000
results, history rows and outbox rows with JSONB columns) the standard library's
``json`` took a quarter of the rules process's time; ``to_json`` encodes a typical
explanation about 5x faster and ``from_json`` decodes outbox headers about 3x faster.
"""

from __future__ import annotations

from typing import Any

import asyncpg
from pydantic_core import from_json, to_json


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


async def _init_connection(conn: asyncpg.Connection) -> None:
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


async def create_pool(dsn: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Open a pool whose connections encode/decode json and jsonb."""
    pool: asyncpg.Pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_init_connection, reset=_keep_session
    )
    return pool


async def connect(dsn: str, **kwargs: Any) -> asyncpg.Connection:
    """One connection with the same codecs as the pool's."""
    conn: asyncpg.Connection = await asyncpg.connect(dsn, **kwargs)
    await _init_connection(conn)
    return conn
