"""Registry events: update the subject projection, re-evaluate those subjects per subject.

A batch is applied in one transaction, in *rounds*: round n holds the n-th event of
each enterprise, so an enterprise's events keep their order and a round never holds
two events of one enterprise. Per round, with a fixed number of queries: take the
shared projection lock (bulk runs take it exclusively) and the enterprises' locks
(sorted), record the events as processed (redelivered ones drop out), apply the
snapshots whose version is newer, re-evaluate their subjects, write the changed
results and their events. Each change cites the event that caused it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from reelpolicy_contracts.events import EnterpriseChanged, Envelope, EventType, ProductionChanged
from reelpolicy_rules.domain.event_order import is_newer, rounds
from reelpolicy_rules.handlers.subject_recalculation import Target, reevaluate_targets
from reelpolicy_rules.ports import (
    PolicyBook,
    ProjectionRepository,
    UnitOfWork,
    UnitOfWorkFactory,
)

ENTERPRISE_TYPES = (EventType.enterprise_upserted, EventType.enterprise_deleted)
PRODUCTION_TYPES = (EventType.production_upserted, EventType.production_deleted)
HANDLED_TYPES = (EventType.api_key_changed, *ENTERPRISE_TYPES, *PRODUCTION_TYPES)


@dataclass(frozen=True)
class Snapshot:
    """A registry event's snapshot: an enterprise (``production_id`` None) or a production."""

    envelope: Envelope
    enterprise_id: str
    production_id: str | None
    version: int
    deleted: bool
    attributes: dict[str, Any]

    @property
    def kind(self) -> str:
        return "enterprise" if self.production_id is None else "production"

    @property
    def subject_id(self) -> str:
        return self.production_id or self.enterprise_id


def snapshot_of(envelope: Envelope) -> Snapshot:
    """Validate a registry event's payload (raises on a malformed one)."""
    if envelope.type in ENTERPRISE_TYPES:
        ent = EnterpriseChanged.model_validate(envelope.payload)
        return Snapshot(
            envelope,
            ent.enterprise_id,
            None,
            ent.version,
            ent.deleted or envelope.type is EventType.enterprise_deleted,
            ent.attributes.model_dump(mode="json"),
        )
    prod = ProductionChanged.model_validate(envelope.payload)
    return Snapshot(
        envelope,
        prod.enterprise_id,
        prod.production_id,
        prod.version,
        prod.deleted or envelope.type is EventType.production_deleted,
        prod.attributes.model_dump(mode="json"),
    )


async def handle_registry_event(
    *, uow: UnitOfWorkFactory, book: PolicyBook, envelope: Envelope, consumer: str, today: date
) -> int:
    """Apply one registry event in its own transaction; returns how many results changed."""
    return await handle_registry_batch(
        uow=uow, book=book, envelopes=[envelope], consumer=consumer, today=today
    )


async def handle_registry_batch(
    *,
    uow: UnitOfWorkFactory,
    book: PolicyBook,
    envelopes: Sequence[Envelope],
    consumer: str,
    today: date,
) -> int:
    """Apply registry events (each enterprise's in the given order) in one transaction.

    Redelivered events are skipped; the events commit (and their events are queued)
    together. Raises (rolling everything back) if any event fails.
    """
    async with uow() as work:
        total = await apply_registry_events(
            work, book=book, envelopes=envelopes, consumer=consumer, today=today
        )
        await work.commit()
    return total


async def apply_registry_events(
    work: UnitOfWork,
    *,
    book: PolicyBook,
    envelopes: Sequence[Envelope],
    consumer: str,
    today: date,
) -> int:
    """Apply the events inside ``work`` (no commit); returns how many results changed."""
    keys = [e for e in envelopes if e.type is EventType.api_key_changed]
    if keys:
        fresh = await work.first_times(consumer=consumer, event_ids=[e.event_id for e in keys])
        for e in keys:
            if e.event_id in fresh:
                await work.apply_api_key_changed(e.payload)
    snapshots = [snapshot_of(e) for e in envelopes if e.type in ENTERPRISE_TYPES + PRODUCTION_TYPES]
    total = 0
    for batch in rounds(snapshots, key=lambda s: s.enterprise_id):
        total += await _apply_round(
            work, book=book, snapshots=batch, consumer=consumer, today=today
        )
    return total


async def _apply_round(
    work: UnitOfWork,
    *,
    book: PolicyBook,
    snapshots: Sequence[Snapshot],
    consumer: str,
    today: date,
) -> int:
    """Snapshots of distinct enterprises: lock, deduplicate, store the newer, re-evaluate."""
    await work.projection.lock_enterprises(sorted(s.enterprise_id for s in snapshots))
    fresh = await work.first_times(
        consumer=consumer, event_ids=[s.envelope.event_id for s in snapshots]
    )
    todo = [s for s in snapshots if s.envelope.event_id in fresh]
    if not todo:
        return 0
    newer = await store_newer(work.projection, todo)
    if not newer:
        return 0
    await book.refresh(work.projection)
    targets = [Target(s.enterprise_id, s.production_id, str(s.envelope.event_id)) for s in newer]
    return await reevaluate_targets(work, book, targets=targets, today=today)


async def store_newer(
    projection: ProjectionRepository, snapshots: Sequence[Snapshot]
) -> list[Snapshot]:
    """Store the snapshots newer than the projection's (distinct subjects); returns them."""
    stored = await projection.versions(
        enterprise_ids=[s.enterprise_id for s in snapshots if s.production_id is None],
        production_ids=[s.production_id for s in snapshots if s.production_id is not None],
    )
    newer = [
        s
        for s in snapshots
        if is_newer(incoming=s.version, stored=stored.get((s.kind, s.subject_id)))
    ]
    await projection.store_enterprises(
        [
            (s.enterprise_id, s.version, s.deleted, s.attributes)
            for s in newer
            if s.production_id is None
        ]
    )
    await projection.store_productions(
        [
            (s.production_id, s.enterprise_id, s.version, s.deleted, s.attributes)
            for s in newer
            if s.production_id is not None
        ]
    )
    return newer
