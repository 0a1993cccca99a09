"""What a feed's secret address opens (pure)."""

from __future__ import annotations

from dataclasses import dataclass

MAX_TOKEN_LENGTH = 100
"""Longer is never a token the portal minted (``secrets.token_urlsafe(32)``: 43)."""


@dataclass(frozen=True)
class FeedAccess:
    enterprise_id: str
    api_key: str
    """The company key the feed reads with (the one of the session that minted it)."""
    locale: str
    """The language of the page it was minted from: the feed's language."""
