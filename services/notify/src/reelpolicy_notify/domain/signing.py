"""Standard Webhooks signing: secrets and the three headers (pure but for randomness)."""

from __future__ import annotations

import base64
import functools
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret(nbytes: int = 32) -> str:
    """``whsec_`` + base64 of ``nbytes`` (24..64) random bytes."""
    if not 24 <= nbytes <= 64:
        raise ValueError("a signing secret has 24 to 64 bytes")
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(nbytes)).decode()


@functools.lru_cache(maxsize=4096)
def _signer(secret: str) -> Webhook:
    """One signer per secret (building it decodes the secret)."""
    return Webhook(secret)


def signature_headers(
    *, msg_id: str, body: str, secrets_: Sequence[str], at: datetime | None = None
) -> dict[str, str]:
    """``webhook-id``, ``webhook-timestamp`` and a ``webhook-signature`` with one
    ``v1,`` signature per secret (several during a rotation's overlap)."""
    when = (at or datetime.now(UTC)).astimezone(UTC)
    signatures = " ".join(
        _signer(secret).sign(msg_id=msg_id, timestamp=when, data=body) for secret in secrets_
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(when.timestamp())),
        "webhook-signature": signatures,
    }
