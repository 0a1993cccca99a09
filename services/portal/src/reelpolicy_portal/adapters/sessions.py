"""Sessions in PostgreSQL, so every replica of the portal knows each of them.

The table keeps the SHA-256 of the session id (the cookie's secret) and the API key
encrypted with the settings' Fernet keys.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

import asyncpg
from cryptography.fernet import InvalidToken, MultiFernet

from reelpolicy_portal.domain.sessions import Role, Session


def _hash(session_id: str) -> bytes:
    return hashlib.sha256(session_id.encode()).digest()


class PostgresSessionStore:
    def __init__(self, pool: asyncpg.Pool, cipher: MultiFernet) -> None:
        self._pool = pool
        self._cipher = cipher

    async def create(
        self,
        *,
        role: Role,
        enterprise_id: str | None,
        api_key: str,
        link_key_id: str | None,
        lifetime: timedelta,
    ) -> str:
        session_id = secrets.token_urlsafe(32)
        await self._pool.execute(
            "INSERT INTO sessions (id_hash, role, enterprise_id, api_key, link_key_id,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            _hash(session_id),
            role,
            enterprise_id,
            self._cipher.encrypt(api_key.encode()),
            link_key_id,
            datetime.now(UTC) + lifetime,
        )
        return session_id

    async def get(self, session_id: str) -> Session | None:
        row = await self._pool.fetchrow(
            "SELECT role, enterprise_id, api_key, link_key_id, expires_at FROM sessions"
            " WHERE id_hash = $1 AND expires_at > now()",
            _hash(session_id),
        )
        return None if row is None else self._session(row)

    async def delete(self, session_id: str) -> Session | None:
        row = await self._pool.fetchrow(
            "DELETE FROM sessions WHERE id_hash = $1"
            " RETURNING role, enterprise_id, api_key, link_key_id, expires_at",
            _hash(session_id),
        )
        return None if row is None else self._session(row)

    async def delete_expired(self) -> int:
        done: str = await self._pool.execute("DELETE FROM sessions WHERE expires_at <= now()")
        return int(done.split()[-1])

    def _session(self, row: asyncpg.Record) -> Session | None:
        try:
            api_key = self._cipher.decrypt(bytes(row["api_key"])).decode()
        except InvalidToken:  # encrypted under a key no longer configured: signed out
            return None
        return Session(
            role=row["role"],
            enterprise_id=row["enterprise_id"],
            api_key=api_key,
            link_key_id=row["link_key_id"],
            expires_at=row["expires_at"],
        )
