"""Unsubscribe tokens for e-mail links (pure).

A token is the subscription id and an HMAC-SHA256 tag over it (keyed with the server
secret, domain-separated): unguessable, checked without a database row of its own, and
specific to one subscription. Changing REELPOLICY_SECRET_KEY invalidates links already
sent; a later e-mail carries a new one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import uuid

_PURPOSE = b"reelpolicy-notify unsubscribe v1\x00"
_TAG_BYTES = 16


def _tag(subscription_id: uuid.UUID, key: bytes) -> bytes:
    return hmac.new(key, _PURPOSE + subscription_id.bytes, hashlib.sha256).digest()[:_TAG_BYTES]


def unsubscribe_token(subscription_id: uuid.UUID, *, key: bytes) -> str:
    raw = subscription_id.bytes + _tag(subscription_id, key)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def subscription_of_token(token: str, *, key: bytes) -> uuid.UUID | None:
    """The subscription a token unsubscribes, or None when it is not a valid token."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    if len(raw) != 16 + _TAG_BYTES:
        return None
    subscription_id = uuid.UUID(bytes=raw[:16])
    if not hmac.compare_digest(raw[16:], _tag(subscription_id, key)):
        return None
    return subscription_id
