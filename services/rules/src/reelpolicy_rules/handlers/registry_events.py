"""Registry events: update the subject projection, re-evaluate that subject per subject.

The transaction takes the shared projection lock (bulk runs take it exclusively) and
a per-enterprise lock, records the event as processed, applies the snapshot only if
its version is newer, and writes the changed results and their events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
HANDLED_TYPES = (EventType.api_key_changed, *ENTERPRISE_TYPES, *PRODUCTION_TYPES)


async def handle_registry_event(
    *, uow: UowFactory, book: PolicyBook, envelope: Envelope, consumer: str, today: date
) -> int:
    """Apply one registry event in its own transaction; returns how many results changed."""
    if envelope.type not in HANDLED_TYPES:
        return 0
    async with uow() as work:
        changed = await apply_registry_event(
            work, book=book, envelope=envelope, consumer=consumer, today=today
        )
        if changed is not None:
            await work.commit()
        return changed or 0


async def handle_registry_batch(
    *, uow: UowFactory, book: PolicyBook, envelopes: Sequence[Envelope], consumer: str,
    today: date,
) -> int:  # fmt: skip
    """Apply several registry events (in the given order) in one transaction.

    Each event is recorded as processed on its own (redelivered ones are skipped), takes
    its enterprise's lock and sees the effects of the events before it, exactly as if
    applied one after the other; they commit (and their events are queued) together.
    Raises (rolling everything back) if any event fails.
    """
    total = 0
    async with uow() as work:
        for envelope in envelopes:
            if envelope.type in HANDLED_TYPES:
                total += (
                    await apply_registry_event(
                        work, book=book, envelope=envelope, consumer=consumer, today=today
                    )
                    or 0
                )
        await work.commit()
    return total


async def apply_registry_event(
    work: RulesUnitOfWork, *, book: PolicyBook, envelope: Envelope, consumer: str, today: date
) -> int | None:
    """Apply one registry event inside ``work`` (no commit).

    Returns how many results changed, or None when the event was already processed
    (nothing was written for it).
    """
    kind = envelope.type
    if kind is EventType.api_key_changed:
        if not await work.first_time(consumer=consumer, event_id=envelope.event_id):
            return None
        await apply_api_key_changed(work.conn, envelope.payload)
        return 0
    if kind not in ENTERPRISE_TYPES + PRODUCTION_TYPES:
        return 0
    production_id = None
    if kind in ENTERPRISE_TYPES:
        ent = EnterpriseChanged.model_validate(envelope.payload)
        enterprise_id = ent.enterprise_id
        await work.projection.lock_enterprise(enterprise_id)
        if not await work.first_time(consumer=consumer, event_id=envelope.event_id):
            return None
        stored = await work.projection.enterprise_version(enterprise_id)
        if not is_newer(incoming=ent.version, stored=stored):
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
            return None
        stored = await work.projection.production_version(production_id)
        if not is_newer(incoming=prod.version, stored=stored):
            return 0
        await work.projection.store_production(
            production_id, enterprise_id, prod.version,
            deleted=prod.deleted or kind is EventType.production_deleted,
            attributes=prod.attributes.model_dump(mode="json"),
        )  # fmt: skip
    await book.refresh(work.conn)
    return await reevaluate_enterprise(
        work, book, enterprise_id=enterprise_id, production_id=production_id, today=today,
        cause=str(envelope.event_id),
    )  # fmt: skip
