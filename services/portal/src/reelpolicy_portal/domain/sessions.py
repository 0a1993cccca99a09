"""What a signed-in session is, and the forms' CSRF tokens (pure)."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Role = Literal["company", "operator"]


@dataclass(frozen=True)
class Session:
    """One signed-in browser: who it acts for and the API key it acts with."""

    role: Role
    enterprise_id: str | None
    api_key: str
    link_key_id: str | None
    """Set when a one-time sign-in link issued the key: sign-out revokes it."""
    expires_at: datetime


@dataclass(frozen=True)
class Identity:
    """Who an API key is, as the registry answers."""

    role: Role
    enterprise_id: str | None


def csrf_token(secret: bytes, binding: str) -> str:
    """The token every POST form of a browser carries: an HMAC of what binds it to that
    browser (its session id, or before sign-in a random value in a cookie of its own).
    A page of another site can neither read the cookie nor compute the HMAC."""
    return hmac.new(secret, b"csrf:" + binding.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, binding: str | None, token: str | None) -> bool:
    if not binding or not token:
        return False
    return hmac.compare_digest(csrf_token(secret, binding), token)
