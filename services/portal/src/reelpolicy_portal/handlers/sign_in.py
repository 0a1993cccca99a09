"""Signing in (an API key, or a one-time link) and out."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from reelpolicy_portal.domain.errors import KeyRefusedError, NotFoundError
from reelpolicy_portal.ports import Services, SessionStore


class SignInRefusedError(Exception):
    """The key or link does not sign anyone in (never says why: unknown, used, expired)."""


async def sign_in_with_key(
    *, services: Services, sessions: SessionStore, api_key: str, lifetime: timedelta
) -> str:
    """Check the key with the registry, learn whose it is, open a session; its id."""
    api_key = api_key.strip()
    if not api_key or len(api_key) > 200:
        raise SignInRefusedError()
    try:
        identity = await services.identify(api_key)
    except (KeyRefusedError, NotFoundError):
        raise SignInRefusedError() from None
    return await sessions.create(
        role=identity.role,
        enterprise_id=identity.enterprise_id,
        api_key=api_key,
        link_key_id=None,
        lifetime=lifetime,
    )


async def sign_in_with_link(
    *, services: Services, sessions: SessionStore, token: str, lifetime: timedelta
) -> str:
    """Redeem a one-time token at the registry (which issues a key for this session)."""
    if not token or len(token) > 200:
        raise SignInRefusedError()
    try:
        enterprise_id, api_key, key_id = await services.redeem_link(token)
    except (NotFoundError, KeyRefusedError):  # 401: a registry without the public redeem route
        raise SignInRefusedError() from None
    return await sessions.create(
        role="company",
        enterprise_id=enterprise_id,
        api_key=api_key,
        link_key_id=key_id,
        lifetime=lifetime,
    )


async def sign_out(*, services: Services, sessions: SessionStore, session_id: str) -> None:
    """End the session; a key a link issued for it is revoked at the registry too."""
    ended = await sessions.delete(session_id)
    if ended is not None and ended.link_key_id is not None:
        with contextlib.suppress(KeyRefusedError, NotFoundError):  # revoked already
            await services.revoke_key(ended.api_key, ended.link_key_id)
