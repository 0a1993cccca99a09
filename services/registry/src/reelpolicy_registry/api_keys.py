"""API keys: the registry issues and revokes them, and tells every service (events).

Each issue or revoke is stored in the registry's own ``api_keys`` table and emits
``api_key.changed`` (only the key's hash travels) on the registry topic, keyed by
the enterprise id (or ``"operator"``), in one transaction. The event carries the
key's version (1 when issued, one more per change) so that every service applies
only newer states; a revoked key stays revoked (its id is never issued again).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from reelpolicy_common import topics
from reelpolicy_common.auth import Role, hash_api_key, new_api_key
from reelpolicy_registry.domain import InvalidRecordError
from reelpolicy_registry.events import api_key_event
from reelpolicy_registry.handlers import NotFoundError
from reelpolicy_registry.ports import ApiKeyRecord, UnitOfWork

UowFactory = Callable[[], UnitOfWork]

ISSUED_VERSION = 1


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str
    created: bool


def _key_id_of(key: str) -> str | None:
    parts = key.split("_", 2)
    if len(parts) == 3 and parts[0] == "rp" and parts[1] and parts[2]:
        return parts[1]
    return None


async def issue_api_key(
    *,
    uow: UowFactory,
    secret_key: str,
    role: Role,
    enterprise_id: str | None,
    label: str | None,
    explicit_key: str | None = None,
) -> IssuedKey:
    """Issue a key (or register ``explicit_key`` exactly, idempotently); answers it once."""
    if (role == "company") != (enterprise_id is not None):
        raise InvalidRecordError.one(
            "enterprise_id", "a company key needs enterprise_id; an operator key has none"
        )
    if explicit_key is None:
        key_id, key = new_api_key()
    else:
        found = _key_id_of(explicit_key)
        if found is None or len(explicit_key) < 24:
            raise InvalidRecordError.one("key", "a key looks like rp_<key_id>_<secret>")
        key_id, key = found, explicit_key
    key_hash = hash_api_key(key, secret_key=secret_key)
    async with uow() as work:
        if enterprise_id is not None and await work.enterprises.get(enterprise_id) is None:
            raise NotFoundError("enterprise", enterprise_id, field="enterprise_id")
        existing = await work.api_keys.get(key_id)
        if existing is not None:
            if existing.key_hash != key_hash or existing.revoked:
                raise InvalidRecordError.one("key", "this key id is taken or revoked")
            return IssuedKey(key_id, key, created=False)
        await work.api_keys.store(
            key_id=key_id,
            key_hash=key_hash,
            role=role,
            enterprise_id=enterprise_id,
            label=label,
            revoked=False,
            version=ISSUED_VERSION,
        )
        work.publish(
            topics.REGISTRY,
            api_key_event(
                key_id=key_id,
                key_hash=key_hash,
                role=role,
                enterprise_id=enterprise_id,
                label=label,
                revoked=False,
                version=ISSUED_VERSION,
            ),
        )
        await work.commit()
    return IssuedKey(key_id, key, created=True)


async def revoke_api_key(*, uow: UowFactory, key_id: str) -> ApiKeyRecord:
    """Revoke a key; revoking twice changes nothing and emits nothing."""
    async with uow() as work:
        existing = await work.api_keys.get(key_id)
        if existing is None:
            raise NotFoundError("api key", key_id)
        if existing.revoked:
            return existing
        version = (existing.version or 0) + 1
        await work.api_keys.store(
            key_id=key_id,
            key_hash=existing.key_hash,
            role=existing.role,
            enterprise_id=existing.enterprise_id,
            label=existing.label,
            revoked=True,
            version=version,
        )
        work.publish(
            topics.REGISTRY,
            api_key_event(
                key_id=key_id,
                key_hash=existing.key_hash,
                role=existing.role,
                enterprise_id=existing.enterprise_id,
                label=existing.label,
                revoked=True,
                version=version,
            ),
        )
        await work.commit()
    return ApiKeyRecord(
        existing.key_id,
        existing.key_hash,
        existing.role,
        existing.enterprise_id,
        existing.label,
        existing.created_at,
        True,
        version,
    )
