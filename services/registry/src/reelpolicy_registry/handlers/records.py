"""Enterprises and productions: create, read, patch, delete; republish every record.

``owner`` restricts a call to one enterprise's records (a company key): anything else
is reported as not found.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import new_snapshot_id, snapshot_headers, snapshot_marker
from reelpolicy_registry.domain.errors import NotFoundError, QuotaExceededError
from reelpolicy_registry.domain.events import (
    PRODUCER,
    api_key_event,
    enterprise_event,
    production_event,
)
from reelpolicy_registry.domain.records import (
    StoredEnterprise,
    StoredProduction,
    patched_enterprise,
    patched_production,
    validate_enterprise,
    validate_production,
)
from reelpolicy_registry.domain.versions import check_version
from reelpolicy_registry.ports import UowFactory


def _today() -> date:
    return datetime.now(UTC).date()


async def create_enterprise(*, uow: UowFactory, data: Any) -> StoredEnterprise:
    """Validate and store a new enterprise; emits ``enterprise.upserted``."""
    attributes = validate_enterprise(data)
    async with uow() as work:
        stored = await work.enterprises.add(
            attributes.model_dump(mode="json"),
            region_since=attributes.established_on or _today(),
        )
        work.publish(topics.REGISTRY, enterprise_event(stored))
        await work.commit()
    return stored


async def get_enterprise(
    *, uow: UowFactory, enterprise_id: str, owner: str | None
) -> StoredEnterprise:
    if owner is not None and owner != enterprise_id:
        raise NotFoundError("enterprise", enterprise_id)
    async with uow() as work:
        found = await work.enterprises.get(enterprise_id)
    if found is None:
        raise NotFoundError("enterprise", enterprise_id)
    return found


async def patch_enterprise(
    *,
    uow: UowFactory,
    enterprise_id: str,
    patch: dict[str, Any],
    expected_version: int | None,
    owner: str | None,
) -> StoredEnterprise:
    """Merge ``patch`` into the attributes, re-validate, store a new version (if changed)."""
    if owner is not None and owner != enterprise_id:
        raise NotFoundError("enterprise", enterprise_id)
    async with uow() as work:
        current = await work.enterprises.get(enterprise_id, for_update=True)
        if current is None:
            raise NotFoundError("enterprise", enterprise_id)
        check_version(expected_version, current.version)
        updated, since = patched_enterprise(current, patch, today=_today())
        attributes = updated.model_dump(mode="json")
        if attributes == current.attributes:
            return current
        stored = await work.enterprises.update(enterprise_id, attributes, region_since=since)
        work.publish(topics.REGISTRY, enterprise_event(stored))
        await work.commit()
    return stored


async def delete_enterprise(
    *, uow: UowFactory, enterprise_id: str, expected_version: int | None
) -> StoredEnterprise:
    """Soft-delete an enterprise and its productions; each emits a ``deleted`` snapshot."""
    async with uow() as work:
        current = await work.enterprises.get(enterprise_id, for_update=True)
        if current is None:
            raise NotFoundError("enterprise", enterprise_id)
        check_version(expected_version, current.version)
        productions = await work.productions.soft_delete_of_enterprise(enterprise_id)
        stored = await work.enterprises.soft_delete(enterprise_id)
        work.publish(topics.REGISTRY, *(production_event(p) for p in productions))
        work.publish(topics.REGISTRY, enterprise_event(stored))
        await work.commit()
    return stored


async def create_production(
    *, uow: UowFactory, data: Any, owner: str | None, quota: int | None = None
) -> StoredProduction:
    """Validate and store a new production of an existing enterprise, which may have
    at most ``quota`` live productions (``None``: no limit)."""
    attributes = validate_production(data)
    if owner is not None and attributes.enterprise_id != owner:
        raise NotFoundError("enterprise", attributes.enterprise_id)
    async with uow() as work:
        enterprise = await work.enterprises.get(attributes.enterprise_id, for_update=True)
        if enterprise is None:
            raise NotFoundError("enterprise", attributes.enterprise_id, field="enterprise_id")
        # the enterprise's row lock serializes its creations: the count cannot go stale
        if quota is not None and await work.productions.count_live(enterprise.id) >= quota:
            raise QuotaExceededError(
                f"production quota reached: a company may have at most {quota} productions"
                " (MAX_PRODUCTIONS_PER_COMPANY); delete one or ask an operator",
                field="enterprise_id",
            )
        stored = await work.productions.add(attributes.model_dump(mode="json"))
        work.publish(topics.REGISTRY, production_event(stored))
        await work.commit()
    return stored


async def get_production(
    *, uow: UowFactory, production_id: str, owner: str | None
) -> StoredProduction:
    async with uow() as work:
        found = await work.productions.get(production_id)
    if found is None or (owner is not None and found.enterprise_id != owner):
        raise NotFoundError("production", production_id)
    return found


async def patch_production(
    *,
    uow: UowFactory,
    production_id: str,
    patch: dict[str, Any],
    expected_version: int | None,
    owner: str | None,
) -> StoredProduction:
    async with uow() as work:
        current = await work.productions.get(production_id, for_update=True)
        if current is None or (owner is not None and current.enterprise_id != owner):
            raise NotFoundError("production", production_id)
        check_version(expected_version, current.version)
        attributes = patched_production(current, patch).model_dump(mode="json")
        if attributes == current.attributes:
            return current
        stored = await work.productions.update(production_id, attributes)
        work.publish(topics.REGISTRY, production_event(stored))
        await work.commit()
    return stored


async def delete_production(
    *, uow: UowFactory, production_id: str, expected_version: int | None, owner: str | None
) -> StoredProduction:
    async with uow() as work:
        current = await work.productions.get(production_id, for_update=True)
        if current is None or (owner is not None and current.enterprise_id != owner):
            raise NotFoundError("production", production_id)
        check_version(expected_version, current.version)
        stored = await work.productions.soft_delete(production_id)
        work.publish(topics.REGISTRY, production_event(stored))
        await work.commit()
    return stored


async def republish_all(*, uow: UowFactory, page_size: int = 2000) -> int:
    """Emit every API key's, enterprise's and production's state again (deleted ones too)
    as one snapshot: each record tagged with the snapshot id, then (same transaction) a
    ``snapshot.completed`` marker with their count (see ``reelpolicy_contracts.topics``)."""
    snapshot_id = new_snapshot_id()
    tag = snapshot_headers(snapshot_id)
    count = 0
    async with uow() as work:
        keys = await work.api_keys.find()
        await work.publish_many(
            topics.REGISTRY,
            [
                api_key_event(
                    key_id=k.key_id,
                    key_hash=k.key_hash,
                    role=k.role,
                    enterprise_id=k.enterprise_id,
                    label=k.label,
                    revoked=k.revoked,
                    version=k.version,
                )
                for k in keys
            ],
            headers=tag,
        )
        count += len(keys)
        after: str | None = None
        while batch := await work.enterprises.snapshots(after=after, limit=page_size):
            events = [enterprise_event(e) for e in batch]
            await work.publish_many(topics.REGISTRY, events, headers=tag)
            count, after = count + len(batch), batch[-1].id
        after = None
        while page := await work.productions.snapshots(after=after, limit=page_size):
            events = [production_event(p) for p in page]
            await work.publish_many(topics.REGISTRY, events, headers=tag)
            count, after = count + len(page), page[-1].id
        work.publish(
            topics.SNAPSHOTS,
            snapshot_marker(
                snapshot_id=snapshot_id, source=PRODUCER, topic=topics.REGISTRY, records=count
            ),
        )
        await work.commit()
    return count
