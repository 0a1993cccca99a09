"""API keys: ``Authorization: Bearer <key>``, stored hashed, with a role.

A key looks like ``rp_<key_id>_<secret>``; only ``HMAC-SHA256(server secret, key)``
is stored. The registry issues and revokes keys (CLI and endpoint) and publishes
``api_key.changed`` events; every service keeps its own ``api_keys`` table from
them, so each checks keys locally without reading another service's tables.

Roles: ``operator`` sees everything; ``company`` is bound to one enterprise and
sees only its records. Services answer 404 (never 403) for another company's
records so ids do not leak: see :meth:`Principal.can_see`.

The HTTP side (the middleware that checks a request's key, the route dependencies
naming the caller) is :mod:`reelpolicy_common.http.authenticate`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import asyncpg

from reelpolicy_common.auth_cache import PrincipalCache, api_keys_changed, key_generation
from reelpolicy_common.consumer import ConsumedEvent, EventHandler, record_processed
from reelpolicy_contracts.events import ApiKeyChanged, EventType

Role = Literal["operator", "company"]


@dataclass(frozen=True)
class Principal:
    key_id: str
    role: Role
    enterprise_id: str | None

    @property
    def is_operator(self) -> bool:
        return self.role == "operator"

    def can_see(self, enterprise_id: str | None) -> bool:
        """Whether this principal may see records of ``enterprise_id``."""
        return self.is_operator or (
            enterprise_id is not None and enterprise_id == self.enterprise_id
        )


def new_api_key() -> tuple[str, str]:
    """A fresh (key_id, full key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"rp_{key_id}_{secrets.token_urlsafe(24)}"


def hash_api_key(key: str, *, secret_key: str) -> str:
    return hmac.new(secret_key.encode(), key.encode(), hashlib.sha256).hexdigest()


async def upsert_api_key(
    conn: asyncpg.Connection,
    *,
    key_id: str,
    key_hash: str,
    role: Role,
    enterprise_id: str | None,
    label: str | None,
    revoked: bool,
    version: int | None = None,
) -> None:
    """Store a key's state: the registry's own write or an ``api_key.changed`` event.

    A stored key only moves forward, whatever order events arrive in (replays,
    republishes): it takes the fields of a newer ``version`` only, and nothing ever
    clears ``revoked_at`` because revocation is final and key ids are never reused.
    A revocation applies whatever its version. ``None`` is an event from before keys
    had versions (stored as 0): it adds an unknown key or revokes one, nothing else.
    The caller owns the transaction. Empties this process's principal caches
    (:mod:`reelpolicy_common.auth_cache`).
    """
    await conn.execute(
        """INSERT INTO api_keys
             (key_id, key_hash, role, enterprise_id, label, revoked_at, version)
           VALUES ($1, $2, $3, $4, $5, CASE WHEN $6 THEN now() END, coalesce($7, 0))
           ON CONFLICT (key_id) DO UPDATE SET
             label = CASE WHEN excluded.version > api_keys.version
                          THEN excluded.label ELSE api_keys.label END,
             version = greatest(api_keys.version, excluded.version),
             revoked_at = coalesce(api_keys.revoked_at, excluded.revoked_at)
           WHERE excluded.version > api_keys.version
              OR (api_keys.revoked_at IS NULL AND excluded.revoked_at IS NOT NULL)""",
        key_id,
        key_hash,
        role,
        enterprise_id,
        label,
        revoked,
        version,
    )
    api_keys_changed()


async def find_principal(
    pool: asyncpg.Pool,
    *,
    key: str,
    secret_key: str,
    cache: PrincipalCache[Principal] | None = None,
) -> Principal | None:
    """The live key's principal (from ``cache`` when it holds it), or ``None``."""
    key_hash = hash_api_key(key, secret_key=secret_key)
    if cache is not None and (cached := cache.get(key_hash)) is not None:
        return cached
    generation = key_generation()
    row = await pool.fetchrow(
        "SELECT key_id, role, enterprise_id FROM api_keys"
        " WHERE key_hash = $1 AND revoked_at IS NULL",
        key_hash,
    )
    if row is None:
        return None
    principal = Principal(row["key_id"], row["role"], row["enterprise_id"])
    if cache is not None:
        cache.put(key_hash, principal, generation=generation)
    return principal


async def apply_api_key_changed(conn: asyncpg.Connection, payload: dict[str, object]) -> None:
    """Project an ``api_key.changed`` event into this service's ``api_keys`` table."""
    change = ApiKeyChanged.model_validate(payload)
    await upsert_api_key(
        conn,
        key_id=change.key_id,
        key_hash=change.key_hash,
        role=change.role,
        enterprise_id=change.enterprise_id,
        label=change.label,
        revoked=change.revoked,
        version=change.version,
    )


def api_key_projection(pool_of: Any, *, consumer: str) -> EventHandler:
    """An event handler that keeps ``api_keys`` in step with the registry's events.

    ``pool_of`` is anything with a ``pool`` attribute (the service runtime): the
    pool exists only once the runtime has started.
    """

    async def handle(event: ConsumedEvent) -> None:
        if event.envelope.type is not EventType.api_key_changed:
            return
        async with pool_of.pool.acquire() as conn, conn.transaction():
            if await record_processed(conn, consumer=consumer, event_id=event.envelope.event_id):
                await apply_api_key_changed(conn, event.envelope.payload)

    return handle
