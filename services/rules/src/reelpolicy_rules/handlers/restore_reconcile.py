"""Reconciling a rules database restored from a backup (``reelpolicy-rules restore-reconcile``).

**Why the consumers cannot just read the topics again.** After its dump, rules handled
registry and policy events in some interleaving, and every eligibility change it
published (with ``policy_version``, amount and previous state) reflects that order.
Its two consumer groups read the two topics independently, so a restored rules left to
catch up would interleave them differently: a registry event handled under policy
version 1 the first time could be handled under version 2 now, deriving another change
(another event id, so notify alerts it again) and never deriving the first one's
successor (lost). The order is not in the restored database, and the input topics do
not hold it.

**What does hold it: rules' own output.** ``reelpolicy.eligibility.v1`` holds every
change rules published, keyed by enterprise, so each (subject, policy)'s changes are in
one partition in the order they were made. What consumers (notify, platform operators)
were told about a (subject, policy) is the restored result, then the changes published
after the dump. "After the dump" is exact: a change in the dump is in the restored
``result_history`` under its event id (written in the transaction of the change); one
that is not was made after it. Changes the first run made but never published are
neither on the topic nor in the dump: nobody was told about them.

So, with the service stopped, in one transaction holding the exclusive projection lock:

1. Read the eligibility topic to its end; per (subject, policy), the changes published
   after the last one the restored history holds are the *lost* ones. Write them back:
   their history rows (original cause and event id, so running this again finds them
   known) and the result the last one left. ``results`` is now what consumers were told.
   On the compacted state topic the last record of a key wins, so the restored outbox's
   unsent state records of those keys (older than the changes written back) are dropped
   and each key's last change's state is queued again. The restored outbox's unsent
   rows found on the topic (``eligibility.changed`` and ``policy.impact`` published after
   the dump) are dropped too: sent again they would follow newer changes of their keys.
2. Read the policy and registry topics to their ends and apply every record to the
   restored projection as the consumers do (a record applies only if its version is
   newer), emitting nothing: the projection catches up with the sources.
3. Re-evaluate every policy (revoked ones too) in bulk against ``results``: only the
   differences between what consumers were told and what holds now are written and
   published (cause ``restore-reconcile``). Nothing told is repeated; whatever the first
   run derived but never published, or what the sources changed since, arrives as one
   change from what was told.

After the commit it moves both consumer groups to the ends it read (as the rebuild
does), so the started service goes on from there. If moving them fails, the service
reads those events again, which changes nothing: they are not newer than the projection.

Running it again changes nothing: the lost changes it wrote back and its own changes are
in the history now, and the projection is already caught up.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EligibilityChanged, EventType, decode_envelope
from reelpolicy_rules.domain.outcomes import Key
from reelpolicy_rules.handlers.eligibility_changes import StateEncoder
from reelpolicy_rules.handlers.policy_recalculation import recalculate_policies
from reelpolicy_rules.handlers.rebuild import apply_snapshot
from reelpolicy_rules.ports import (
    ConsumerGroups,
    Partition,
    PolicyBook,
    ReplayedRecord,
    SubjectCache,
    TopicReader,
    UnitOfWork,
    UnitOfWorkFactory,
)

log = logging.getLogger(__name__)
RECONCILE_CAUSE = "restore-reconcile"
SOURCES = (topics.POLICY, topics.REGISTRY)
"""The topics the projection catches up from (the consumer groups moved)."""
KNOWN_BATCH = 5000
"""Eligibility events looked up in the history per query."""

KnownChanges = Callable[[Sequence[tuple[str, str, uuid.UUID]]], Awaitable[set[uuid.UUID]]]
"""Which of these (subject id, policy id, event id) the restored history holds."""


@dataclass(frozen=True)
class PublishedChange:
    event_id: uuid.UUID
    change: EligibilityChanged


class LostChanges:
    """Folds the eligibility topic (fed in partition order) into, per (subject, policy),
    the changes published after the last one ``known`` (the restored history) holds.

    Records are looked up ``batch`` at a time; call :meth:`finish` after the last.
    ``unsent``: the event ids the restored outbox holds unpublished; those found on the
    topic (published after the dump; ``policy.impact`` summaries too) are collected in
    ``published_unsent``.
    """

    def __init__(
        self,
        known: KnownChanges,
        *,
        batch: int = KNOWN_BATCH,
        unsent: Set[uuid.UUID] = frozenset(),
    ) -> None:
        self._known = known
        self._batch = batch
        self._unsent = unsent
        self.published_unsent: set[uuid.UUID] = set()
        self._pending: list[PublishedChange] = []
        self.lost: dict[Key, list[PublishedChange]] = {}
        self.read = 0
        self.skipped = 0

    async def add(self, record: ReplayedRecord) -> None:
        try:
            if record.value is None:
                raise ValueError("a record without a value")
            envelope = decode_envelope(record.value)
            if envelope.event_id in self._unsent:
                self.published_unsent.add(envelope.event_id)
            if envelope.type is not EventType.eligibility_changed:
                return  # policy.impact: a summary, no result
            change = EligibilityChanged.model_validate(envelope.payload)
        except ValueError as exc:  # pydantic's ValidationError too
            self.skipped += 1
            log.warning("skipped %s:%d@%d: %s", record.topic, record.partition, record.offset, exc)
            return
        self.read += 1
        self._pending.append(PublishedChange(envelope.event_id, change))
        if len(self._pending) >= self._batch:
            await self._fold()

    async def finish(self) -> dict[Key, list[PublishedChange]]:
        await self._fold()
        return self.lost

    async def _fold(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        known = await self._known(
            [(p.change.subject_id, p.change.policy_id, p.event_id) for p in pending]
        )
        for published in pending:
            key = (published.change.subject_id, published.change.policy_id)
            if published.event_id in known:
                self.lost.pop(key, None)  # the restored database holds this far
                continue
            after = self.lost.setdefault(key, [])
            if all(p.event_id != published.event_id for p in after):  # published twice
                after.append(published)


async def write_back(work: UnitOfWork, lost: Mapping[Key, Sequence[PublishedChange]]) -> int:
    """Store the lost changes' history rows and the result each key's last one left;
    returns how many changes."""
    history = []
    deletes: list[Key] = []
    upserts = []
    for key, changes in lost.items():
        for p in changes:
            c = p.change
            history.append(
                (
                    c.subject_id,
                    c.policy_id,
                    c.enterprise_id,
                    c.policy_version,
                    c.previous_status,
                    c.status,
                    c.previous_amount_cny,
                    c.amount_cny,
                    c.cause,
                    p.event_id,
                )
            )
        last = changes[-1].change
        if last.status == "ineligible":
            deletes.append(key)
        else:
            upserts.append(
                (
                    last.subject_type,
                    last.subject_id,
                    last.policy_id,
                    last.enterprise_id,
                    last.policy_version,
                    last.status,
                    last.amount_cny,
                    list(last.missing_fields),
                    last.explanation,
                )
            )
    await work.results.replace(deletes, upserts)
    await work.results.add_history(history)
    await _republish_states(work, [changes[-1] for changes in lost.values()])
    return len(history)


async def _republish_states(work: UnitOfWork, last: Sequence[PublishedChange]) -> None:
    """Make each key's last published change its latest record on the state topic.

    The restored outbox may hold the key's state records that were unpublished at dump
    time; the first run published them after the dump, then the newer changes' records.
    Sent again now they would land after those and stay the key's value on the compacted
    topic until its next change: they are dropped. The state record of the last change is
    queued again (its first copy may not have been published before the failure); the
    reconcile's own changes, queued after it, come later still.
    """
    if not last:
        return
    rows = [p.change.model_dump(mode="json") for p in last]
    keys = [topics.state_key(r["subject_type"], r["subject_id"], r["policy_id"]) for r in rows]
    dropped = await work.drop_unsent(topics.ELIGIBILITY_STATE, keys)
    if dropped:
        log.info("dropped %d unpublished state record(s) older than a published change", dropped)
    encoder = StateEncoder()
    states = (
        encoder.encode(row, cause=row["cause"], change_event_id=p.event_id)
        for row, p in zip(rows, last, strict=True)
    )
    await work.publish_encoded(topics.ELIGIBILITY_STATE, states, count=len(rows))


@dataclass
class Reconciled:
    """What a reconcile did: changes written back, unsent outbox changes dropped (they
    were published), records applied, results that differed (and were published), each
    partition's end, how each group moved."""

    written_back: int = 0
    resent_dropped: int = 0
    eligibility_read: int = 0
    applied: int = 0
    skipped: int = 0
    changed: int = 0
    ends: dict[Partition, int] = field(default_factory=dict)
    moved: dict[str, str] = field(default_factory=dict)


async def _catch_up(work: UnitOfWork, reader: TopicReader, done: Reconciled) -> None:
    """Apply every record of the sources below their ends (newer versions win)."""

    async def apply(record: ReplayedRecord) -> None:
        try:
            if record.value is None:
                raise ValueError("a record without a value")
            await apply_snapshot(work, decode_envelope(record.value))
        except ValueError as exc:  # what the service dead-letters
            done.skipped += 1
            log.warning("skipped %s:%d@%d: %s", record.topic, record.partition, record.offset, exc)
        else:
            done.applied += 1

    done.ends = await reader.read_to_ends(list(SOURCES), apply)


async def reconcile_restore(
    *,
    uow: UnitOfWorkFactory,
    reader: TopicReader,
    groups: ConsumerGroups,
    cache: SubjectCache,
    book: PolicyBook,
    today: date,
    trace_limit: int,
) -> Reconciled:
    """Reconcile a restored database with what was published (see the module doc);
    ``cache`` and ``book`` start empty. Run with the service stopped."""
    done = Reconciled()
    async with uow() as work:
        await work.projection.lock_all()
        try:
            await reader.open([topics.ELIGIBILITY, *SOURCES])
            unsent = await work.unsent_event_ids(topics.ELIGIBILITY)
            lost = LostChanges(work.results.known_changes, unsent=unsent)
            await reader.read_to_ends([topics.ELIGIBILITY], lost.add)
            done.written_back = await write_back(work, await lost.finish())
            # published after the dump: sent again they would follow newer changes of
            # their keys (consumers dedupe them, but a later reconcile from an older
            # dump would take such a repeat for the last change of its key)
            done.resent_dropped = await work.drop_unsent_events(
                topics.ELIGIBILITY, sorted(lost.published_unsent)
            )
            done.eligibility_read, done.skipped = lost.read, lost.skipped
            await _catch_up(work, reader, done)
        finally:
            await reader.close()
        await book.refresh(work.projection)
        plan = await recalculate_policies(
            work,
            cache=cache,
            book=book,
            seeds=sorted(book.policies),  # revoked ones too: their results must go
            today=today,
            cause=RECONCILE_CAUSE,
            trace_limit=trace_limit,
        )
        done.changed = plan.changes.height
        await work.commit()
    done.moved = await groups.move(done.ends)
    return done
