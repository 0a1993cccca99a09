"""Feed tokens in PostgreSQL: stored as their SHA-256, with the enterprise and its API
key (encrypted with the settings' Fernet keys)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

import asyncpg
from cryptography.fernet import InvalidToken, MultiFernet

from reelpolicy_portal.domain.feed_access import FeedAccess


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class PostgresFeedTokens:
    def __init__(self, pool: asyncpg.Pool, cipher: MultiFernet) -> None:
        self._pool = pool
        self._cipher = cipher

    async def mint(self, *, enterprise_id: str, api_key: str, locale: str) -> str:
        token = secrets.token_urlsafe(32)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE feed_tokens SET revoked_at = now()"
                " WHERE enterprise_id = $1 AND revoked_at IS NULL",
                enterprise_id,
            )
            await conn.execute(
                "INSERT INTO feed_tokens (token_hash, enterprise_id, api_key, locale)"
                " VALUES ($1, $2, $3, $4)",
                _hash(token),
                enterprise_id,
                self._cipher.encrypt(api_key.encode()),
                locale,
            )
        return token

    async def live_since(self, enterprise_id: str) -> datetime | None:
        found: datetime | None = await self._pool.fetchval(
            "SELECT created_at FROM feed_tokens WHERE enterprise_id = $1 AND revoked_at IS NULL",
            enterprise_id,
        )
        return found

    async def revoke(self, enterprise_id: str) -> bool:
        done: str = await self._pool.execute(
            "UPDATE feed_tokens SET revoked_at = now()"
            " WHERE enterprise_id = $1 AND revoked_at IS NULL",
            enterprise_id,
        )
        return done != "UPDATE 0"

    async def resolve(self, token: str) -> FeedAccess | None:
        row = await self._pool.fetchrow(
            "SELECT enterprise_id, api_key, locale FROM feed_tokens"
            " WHERE token_hash = $1 AND revoked_at IS NULL",
            _hash(token),
        )
        if row is None:
            return None
        try:
            api_key = self._cipher.decrypt(bytes(row["api_key"])).decode()
        except InvalidToken:  # encrypted under a key no longer configured
            return None
        return FeedAccess(row["enterprise_id"], api_key, row["locale"])
