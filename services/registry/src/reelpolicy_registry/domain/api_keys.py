"""API keys: what a key looks like, whom it is bound to, and how it changes.

The registry is the source of API keys. Each issue or revoke is stored in its own
``api_keys`` table and emits ``api_key.changed`` (only the key's hash travels) on the
registry topic. The event carries the key's version (1 when issued, one more per
change) so that every service applies only newer states; a revoked key stays revoked
(its id is never issued again).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from reelpolicy_registry.domain.errors import InvalidRecordError

Role = Literal["operator", "company"]
"""Whom a key acts for: an ``operator`` (everything) or a ``company`` (one enterprise);
the same values as ``reelpolicy_common.auth.Role`` and the event's ``role``."""

ISSUED_VERSION = 1
"""The version of a key just issued."""

MIN_KEY_LENGTH = 24
"""The shortest key registered as given (``rp_<key_id>_<secret>``)."""


@dataclass(frozen=True)
class ApiKeyRecord:
    key_id: str
    key_hash: str
    role: Role
    enterprise_id: str | None
    label: str | None
    created_at: datetime
    revoked: bool
    version: int | None = None
    """1 when issued, one more per change; ``None`` for a key stored without one."""


def check_binding(role: Role, enterprise_id: str | None) -> None:
    """A company key is bound to one enterprise; an operator key to none."""
    if (role == "company") != (enterprise_id is not None):
        raise InvalidRecordError.one(
            "enterprise_id", "a company key needs enterprise_id; an operator key has none"
        )


def _key_id_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] == "rp" and parts[1] and parts[2]:
        return parts[1]
    return None


def key_id_of(key: str) -> str:
    """The id of a key given whole (to be registered exactly), or why it is not a key."""
    found = _key_id_of(key)
    if found is None or len(key) < MIN_KEY_LENGTH:
        raise InvalidRecordError.one("key", "a key looks like rp_<key_id>_<secret>")
    return found


def next_version(key: ApiKeyRecord) -> int:
    """The version of ``key``'s next state (a key stored without a version gets 1)."""
    return (key.version or 0) + 1
