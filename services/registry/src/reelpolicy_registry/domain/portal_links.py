"""One-time sign-in links to the portal: what a link is and how its token is kept.

An operator mints a link for one enterprise; a person opens it once in the portal,
which redeems it for a new company key of that enterprise (a *portal session key*,
revoked again on sign-out). The registry stores only the SHA-256 of a link's token:
the token carries 256 random bits, so a plain hash cannot be reversed or guessed,
and redeeming looks a link up by that hash (an index probe), which takes the same
time whatever the token is. A link is good once, until it expires; an unknown, used
or expired link is refused the same way, so the answer tells a guesser nothing.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode

TOKEN_BYTES = 32
"""Random bytes in a link's token (43 URL-safe characters)."""

MAX_TOKEN_LENGTH = 128
"""The longest token a redeem request may carry (a real one is 43 characters)."""

SESSION_KEY_LABEL = "portal session"
"""The label of the key a redeemed link issues (``api_key.changed`` carries it)."""

SIGN_IN_PATH = "/sign-in/link"
"""Where the portal takes a link's token (``?token=``)."""


@dataclass(frozen=True)
class MintedLink:
    token: str
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class RedeemedLink:
    enterprise_id: str
    key_id: str
    api_key: str


class LinkNotRedeemableError(Exception):
    """No link has this token, or it was used, or it has expired: deliberately one error."""

    def __init__(self) -> None:
        super().__init__("no such sign-in link, or it was used or has expired")


def new_link_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def link_token_hash(token: str) -> str:
    """What the registry stores of a token, and looks a link up by."""
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def sign_in_url(portal_base_url: str, token: str) -> str:
    """The link a person opens: the portal's sign-in page with the token."""
    return f"{portal_base_url.rstrip('/')}{SIGN_IN_PATH}?{urlencode({'token': token})}"
