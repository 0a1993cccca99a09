"""What the handlers need from outside: the session store and the other services."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Protocol

from reelpolicy_portal.domain.feed_access import FeedAccess
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

    async def delete_expired(self) -> int:
        """Delete every expired session; how many there were."""
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


class Alerts(Protocol):
    """notify's public HTTP API (subscriptions and their delivery log), with a key."""

    async def subscriptions(
        self, api_key: str, enterprise_id: str | None = None
    ) -> list[dict[str, Any]]: ...

    async def subscription(self, api_key: str, subscription_id: str) -> dict[str, Any]: ...

    async def create_subscription(self, api_key: str, body: dict[str, Any]) -> dict[str, Any]:
        """The new subscription with its ``secret`` (notify shows it this once)."""
        ...

    async def change_subscription(
        self, api_key: str, subscription_id: str, changes: dict[str, Any]
    ) -> dict[str, Any]: ...

    async def delete_subscription(self, api_key: str, subscription_id: str) -> None: ...

    async def rotate_secret(self, api_key: str, subscription_id: str) -> dict[str, Any]: ...

    async def send_test(self, api_key: str, subscription_id: str) -> str:
        """Queue a test message; the id of its delivery."""
        ...

    async def deliveries(
        self,
        api_key: str,
        *,
        subscription_id: str | None = None,
        status: str | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]: ...

    async def replay_delivery(self, api_key: str, delivery_id: str) -> dict[str, Any]: ...


class Operations(Alerts, Protocol):
    """What the operator's pages read besides notify: rules' simulation, dead letters."""

    async def simulate(self, api_key: str, draft: bytes) -> dict[str, Any]:
        """Raises :class:`~reelpolicy_portal.domain.simulation.DraftRejectedError`."""
        ...

    async def dead_letters(self) -> dict[str, dict[str, int]]:
        """Per service, dead letters waiting by original topic."""
        ...


class FeedTokens(Protocol):
    """The secret feed addresses: one live token per enterprise, stored hashed."""

    async def mint(self, *, enterprise_id: str, api_key: str, locale: str) -> str:
        """A new token (the enterprise's previous one stops working)."""
        ...

    async def live_since(self, enterprise_id: str) -> datetime | None: ...

    async def revoke(self, enterprise_id: str) -> bool: ...

    async def resolve(self, token: str) -> FeedAccess | None: ...
