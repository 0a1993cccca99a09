"""Registry events: update the subject projection, re-evaluate that subject per subject.

The transaction takes the shared projection lock (bulk runs take it exclusively) and
a per-enterprise lock, records the event as processed, applies the snapshot only if
its version is newer, and writes the changed results and their events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

from reelpolicy_common.auth import apply_api_key_changed
from reelpolicy_common.events import EnterpriseChanged, Envelope, EventType, ProductionChanged
from reelpolicy_rules.adapters.cache import PolicyBook
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.domain.snapshots import is_newer
from reelpolicy_rules.handlers.per_subject import reevaluate_enterprise

UowFactory = Callable[[], RulesUnitOfWork]
ENTERPRISE_TYPES = (EventType.enterprise_upserted, EventType.enterprise_deleted)
PRODUCTION_TYPES = (EventType.production_upserted, EventType.production_deleted)


async def handle_registry_event(
    *, uow: UowFactory, book: PolicyBook, envelope: Envelope, consumer: str, today: date
) -> int:
    """Apply one registry event; returns how many results changed."""
    kind = envelope.type
    if kind is EventType.api_key_changed:
        async with uow() as work:
            if await work.first_time(consumer=consumer, event_id=envelope.event_id):
                await apply_api_key_changed(work.conn, envelope.payload)
                await work.commit()
        return 0
    if kind not in ENTERPRISE_TYPES + PRODUCTION_TYPES:
        return 0
    async with uow() as work:
        production_id = None
        if kind in ENTERPRISE_TYPES:
            ent = EnterpriseChanged.model_validate(envelope.payload)
            enterprise_id = ent.enterprise_id
            await work.projection.lock_enterprise(enterprise_id)
            if not await work.first_time(consumer=consumer, event_id=envelope.event_id):
                return 0
            stored = await work.projection.enterprise_version(enterprise_id)
            if not is_newer(incoming=ent.version, stored=stored):
                await work.commit()
                return 0
            await work.projection.store_enterprise(
                enterprise_id, ent.version, deleted=ent.deleted or kind is EventType.enterprise_deleted,
                attributes=ent.attributes.model_dump(mode="json"),
            )  # fmt: skip
        else:
            prod = ProductionChanged.model_validate(envelope.payload)
            enterprise_id, production_id = prod.enterprise_id, prod.production_id
            await work.projection.lock_enterprise(enterprise_id)
            if not await work.first_time(consumer=consumer, event_id=envelope.event_id):
                return 0
            stored = await work.projection.production_version(production_id)
            if not is_newer(incoming=prod.version, stored=stored):
                await work.commit()
                return 0
            await work.projection.store_production(
                production_id, enterprise_id, prod.version,
                deleted=prod.deleted or kind is EventType.production_deleted,
                attributes=prod.attributes.model_dump(mode="json"),
            )  # fmt: skip
        await book.refresh(work.conn)
        changed = await reevaluate_enterprise(
            work, book, enterprise_id=enterprise_id, production_id=production_id, today=today,
            cause=str(envelope.event_id),
        )  # fmt: skip
        await work.commit()
        return changed
