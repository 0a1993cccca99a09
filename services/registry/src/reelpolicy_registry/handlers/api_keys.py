"""API keys: issue and revoke them, telling every service (``api_key.changed``).

Each change is stored in the registry's ``api_keys`` table and emits its event on the
registry topic, keyed by the enterprise id (or ``"operator"``), in one transaction
(the rules: :mod:`reelpolicy_registry.domain.api_keys`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from reelpolicy_common.auth import hash_api_key, new_api_key
from reelpolicy_contracts import topics
from reelpolicy_registry.domain.api_keys import (
    ISSUED_VERSION,
    ApiKeyRecord,
    Role,
    check_binding,
    key_id_of,
    next_version,
)
from reelpolicy_registry.domain.errors import InvalidRecordError, NotFoundError
from reelpolicy_registry.domain.events import api_key_event
from reelpolicy_registry.ports import UnitOfWork, UowFactory


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    key: str
    created: bool


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
    check_binding(role, enterprise_id)
    if explicit_key is None:
        key_id, key = new_api_key()
    else:
        key_id, key = key_id_of(explicit_key), explicit_key
    key_hash = hash_api_key(key, secret_key=secret_key)
    async with uow() as work:
        if enterprise_id is not None and await work.enterprises.get(enterprise_id) is None:
            raise NotFoundError("enterprise", enterprise_id, field="enterprise_id")
        existing = await work.api_keys.get(key_id)
        if existing is not None:
            if existing.key_hash != key_hash or existing.revoked:
                raise InvalidRecordError.one("key", "this key id is taken or revoked")
            return IssuedKey(key_id, key, created=False)
        await _store_issued(work, key_id, key_hash, role, enterprise_id, label)
        await work.commit()
    return IssuedKey(key_id, key, created=True)


async def issue_company_key_in(
    work: UnitOfWork, *, secret_key: str, enterprise_id: str, label: str
) -> IssuedKey:
    """Issue a fresh company key of a live enterprise within ``work``, an open unit of
    work of another use case (which checked the enterprise and commits)."""
    key_id, key = new_api_key()
    await _store_issued(
        work, key_id, hash_api_key(key, secret_key=secret_key), "company", enterprise_id, label
    )
    return IssuedKey(key_id, key, created=True)


async def _store_issued(
    work: UnitOfWork,
    key_id: str,
    key_hash: str,
    role: Role,
    enterprise_id: str | None,
    label: str | None,
) -> None:
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


async def revoke_api_key(*, uow: UowFactory, key_id: str, owner: str | None = None) -> ApiKeyRecord:
    """Revoke a key; revoking twice changes nothing and emits nothing.

    ``owner`` (a company caller's enterprise) may revoke only that enterprise's keys:
    any other key, an operator's too, is not found, as every record of another is.
    """
    async with uow() as work:
        existing = await work.api_keys.get(key_id)
        if existing is None or (owner is not None and existing.enterprise_id != owner):
            raise NotFoundError("api key", key_id)
        if existing.revoked:
            return existing
        version = next_version(existing)
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
    return replace(existing, revoked=True, version=version)
