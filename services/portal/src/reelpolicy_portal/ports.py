"""What the handlers need from outside: the session store and the other services."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Protocol

from reelpolicy_portal.domain.sessions import Identity, Role, Session


class SessionStore(Protocol):
    async def create(
        self,
        *,
        role: Role,
        enterprise_id: str | None,
        api_key: str,
        link_key_id: str | None,
        lifetime: timedelta,
    ) -> str:
        """Store a new session; returns its id (random; stored only hashed)."""
        ...

    async def get(self, session_id: str) -> Session | None:
        """The live session of that id, or None (unknown or expired)."""
        ...

    async def delete(self, session_id: str) -> Session | None:
        """End it; returns what it was (None when there was none)."""
        ...


class Services(Protocol):
    """The public HTTP APIs of registry, rules and ingest, called with a session's key.
    Raises the exceptions of :mod:`reelpolicy_portal.domain.errors`."""

    async def identify(self, api_key: str) -> Identity: ...

    async def redeem_link(self, token: str) -> tuple[str, str, str]:
        """A one-time sign-in token → (enterprise_id, api_key, key_id)."""
        ...

    async def revoke_key(self, api_key: str, key_id: str) -> None: ...

    async def enterprise(self, api_key: str, enterprise_id: str) -> dict[str, Any]: ...

    async def productions(self, api_key: str, enterprise_id: str) -> list[dict[str, Any]]: ...

    async def record(
        self, api_key: str, subject_type: str, subject_id: str
    ) -> tuple[dict[str, Any], str]:
        """An enterprise or production and its ETag."""
        ...

    async def patch_record(
        self,
        api_key: str,
        subject_type: str,
        subject_id: str,
        patch: dict[str, Any],
        *,
        etag: str,
    ) -> dict[str, Any]: ...

    async def eligibility(self, api_key: str, enterprise_id: str) -> list[dict[str, Any]]:
        """Every result of the enterprise and its productions, ineligible ones too."""
        ...

    async def history(
        self, api_key: str, subject_id: str, policy_id: str
    ) -> list[dict[str, Any]]: ...

    async def policy_titles(self, api_key: str) -> dict[str, dict[str, str]]:
        """Policy id → {"zh": ..., "en": ...}."""
        ...

    async def policies(self, api_key: str) -> list[dict[str, Any]]:
        """The latest document of every live policy (with its ``version``)."""
        ...

    async def policy_version(
        self, api_key: str, policy_id: str, version: int
    ) -> dict[str, Any]: ...
