"""Rebuilding the projection from the policy and registry topics (``reelpolicy-rules rebuild``).

**It relies on a snapshot, not on retention.** Event topics keep records for a stated
time (``reelpolicy_contracts.topics.config``): on Apache Kafka the oldest records of the
policy and registry topics are gone after 7 days, and a rebuild from what is left
would be partial and announce mass "no longer eligible" changes. So a rebuild needs
a *complete snapshot* of each source: ``reelpolicy-ingest republish`` and
``reelpolicy-registry republish`` write every record's current state (revoked
policies, deleted enterprises and productions and revoked keys too) tagged with a
snapshot id (Kafka header ``reelpolicy-snapshot``), and in the same transaction a
``snapshot.completed`` marker with their count to the compacted topic
``reelpolicy.snapshots.v1`` (keyed by the source topic, so its latest marker is kept).
The rebuild reads the latest marker of each source first and refuses
(:class:`SnapshotError`, nothing changed) if a source has none; it then replays both
topics in full and refuses, rolling back, unless it read every record of each
latest snapshot (distinct event ids; a relay may publish one twice). Records older
than the snapshot that retention has kept are merged by version like everything else
(newer wins), so they change nothing; records after it are the changes since. A
complete snapshot therefore gives the same projection whether or not the topics still
hold their oldest records. Retention deletes a partition's records oldest first, so
it cannot remove a record written after a snapshot record that is still there; run
the rebuild soon after the republish (the runbook's procedure), not days later.

Run it with the rules service stopped (every replica). In one transaction holding the
exclusive projection lock it truncates the projection tables (``policies``,
``enterprises``, ``productions``; ``results`` and their history are kept), reads both
topics from the beginning up to the end they had when the replay reached them, and
applies every snapshot as the consumers do (newer versions win; an invalid policy
document or an undecodable record is skipped, as the service dead-letters it). It then
re-evaluates in bulk every policy of the rebuilt projection, active **and revoked**,
against the kept results, so only real differences are written and emitted (cause
``rebuild``): a revocation the stopped service never saw takes the results away, a
deletion takes the deleted subject's results away as the normal path does (a deleted
record's snapshot carries ``deleted`` and its newest version, so it never comes back);
a policy that has results but is on neither topic is left alone (with a warning).
After that transaction commits, it moves both consumer groups to the end offsets it
read, so the restarted service does not handle those events again.

How each topic is read to its end: :mod:`reelpolicy_rules.adapters.topic_reader`;
moving the groups: :mod:`reelpolicy_rules.adapters.consumer_groups`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
    SnapshotCompleted,
    decode_envelope,
)
from reelpolicy_policy import parse_policy
from reelpolicy_rules.domain.event_order import policy_applies
from reelpolicy_rules.handlers.policy_recalculation import recalculate_policies
from reelpolicy_rules.handlers.registry_events import (
    ENTERPRISE_TYPES,
    PRODUCTION_TYPES,
    snapshot_of,
    store_newer,
)
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
REBUILD_CAUSE = "rebuild"
SOURCES: dict[str, str] = {topics.POLICY: "ingest", topics.REGISTRY: "registry"}
"""The topics the projection is rebuilt from, and the service that republishes each."""


async def apply_snapshot(work: UnitOfWork, env: Envelope) -> None:
    """Apply one snapshot event to the projection if it is newer (as the consumers do).

    Raises ``ValueError`` (before writing anything) for a payload the consumers would
    dead-letter: an invalid payload or policy document.
    """
    p, t = work.projection, env.type
    if t is EventType.policy_published:
        pub = PolicyPublished.model_validate(env.payload)
        document = {**pub.document, "version": pub.version}
        parse_policy(document)  # PolicyValidationError (a ValueError): the service's DLQ
        stored = await p.policy_state(pub.policy_id)
        if policy_applies(incoming=pub.version, stored=stored and stored[0], revoke=False):
            await p.store_policy(pub.policy_id, pub.version, document)
    elif t is EventType.policy_revoked:
        rev = PolicyRevoked.model_validate(env.payload)
        stored = await p.policy_state(rev.policy_id)
        if (
            stored
            and not stored[1]
            and policy_applies(incoming=rev.version, stored=stored[0], revoke=True)
        ):
            await p.revoke_policy(rev.policy_id)
    elif t in ENTERPRISE_TYPES + PRODUCTION_TYPES:
        await store_newer(p, [snapshot_of(env)])
    elif t is EventType.api_key_changed:
        await work.apply_api_key_changed(env.payload)


class SnapshotError(RuntimeError):
    """The topics hold no complete snapshot of a source: the rebuild refuses to run."""


@dataclass
class Replay:
    """What a replay read: each partition's end (the offset to commit), counts, and the
    snapshot it relied on per topic with how many of its records it saw."""

    ends: dict[Partition, int] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0
    snapshots: dict[str, SnapshotCompleted] = field(default_factory=dict)
    seen: dict[uuid.UUID, set[bytes]] = field(default_factory=dict)
    """Distinct event ids read per snapshot id (a relay may publish a record twice)."""


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did: the replay, how many results differed, how each group moved."""

    replay: Replay
    changed: int
    moved: dict[str, str]


def _where(record: ReplayedRecord) -> str:
    return f"{record.topic}:{record.partition}@{record.offset}"


def _envelope(record: ReplayedRecord) -> Envelope:
    """The record's envelope; ``ValueError`` if it is none."""
    if record.value is None:
        raise ValueError("a record without a value")
    return decode_envelope(record.value)


def _snapshot_of(record: ReplayedRecord) -> uuid.UUID | None:
    for name, value in record.headers or ():
        if name == topics.SNAPSHOT_HEADER:
            try:
                return uuid.UUID(value.decode())
            except ValueError:
                return None
    return None


def _republish_hint(topic: str) -> str:
    return f"reelpolicy-{SOURCES[topic]} republish"


async def _latest_snapshots(reader: TopicReader) -> dict[str, SnapshotCompleted]:
    """The latest ``snapshot.completed`` marker of each source topic; refuses (before the
    long replay) if a source has none."""
    latest: dict[str, tuple[datetime, SnapshotCompleted]] = {}

    async def take(record: ReplayedRecord) -> None:
        try:
            env = _envelope(record)
            if env.type is not EventType.snapshot_completed:
                return
            marker = SnapshotCompleted.model_validate(env.payload)
        except ValueError as exc:
            log.warning("skipped a record of %s: %s", topics.SNAPSHOTS, exc)
            return
        if marker.topic in SOURCES and (
            marker.topic not in latest or env.occurred_at >= latest[marker.topic][0]
        ):
            latest[marker.topic] = (env.occurred_at, marker)

    await reader.read_to_ends([topics.SNAPSHOTS], take)
    missing = [topic for topic in SOURCES if topic not in latest]
    if missing:
        raise SnapshotError(
            "no snapshot of "
            + ", ".join(missing)
            + " on the broker: the topics may have lost their oldest records, so a rebuild"
            " from them could be partial. Run "
            + " and ".join(f"`{_republish_hint(t)}`" for t in missing)
            + " (with the service running, so its relay publishes it), then rebuild again"
            " (deploy/runbook.md, 'Rebuilding the rules projection')."
        )
    return {topic: marker for topic, (_, marker) in latest.items()}


def _check_complete(replay: Replay) -> None:
    """Every source's latest snapshot was read in full, or the rebuild refuses."""
    problems = []
    for topic, marker in sorted(replay.snapshots.items()):
        seen = len(replay.seen.get(marker.snapshot_id, ()))
        if seen < marker.records:
            problems.append(
                f"snapshot {marker.snapshot_id} of {topic} ({_republish_hint(topic)}):"
                f" {seen} of its {marker.records} record(s) on the broker"
            )
    if problems:
        raise SnapshotError(
            "incomplete snapshot(s): "
            + "; ".join(problems)
            + ". If the service's outbox relay is still publishing it, wait until its"
            " backlog is 0 and rebuild again; otherwise records were lost (retention):"
            " republish again, then rebuild. Nothing was changed."
        )


async def replay_sources(work: UnitOfWork, *, reader: TopicReader) -> Replay:
    """Apply every record of both topics below each partition's end, after finding each
    source's latest snapshot; refuse unless every such snapshot was read in full."""
    replay = Replay()
    try:
        await reader.open([topics.SNAPSHOTS, *SOURCES])
        replay.snapshots = await _latest_snapshots(reader)
        counted = {marker.snapshot_id for marker in replay.snapshots.values()}

        async def apply(record: ReplayedRecord) -> None:
            try:
                env = _envelope(record)
            except ValueError as exc:
                replay.skipped += 1
                log.warning("skipped %s: %s", _where(record), exc)
                return
            snapshot = _snapshot_of(record)
            if snapshot in counted:  # read, even if the consumers would dead-letter it
                replay.seen.setdefault(snapshot, set()).add(env.event_id.bytes)
            try:
                await apply_snapshot(work, env)
            except ValueError as exc:
                replay.skipped += 1
                log.warning("skipped %s: %s", _where(record), exc)
            else:
                replay.applied += 1

        replay.ends = await reader.read_to_ends(list(SOURCES), apply)
        _check_complete(replay)
        return replay
    finally:
        await reader.close()


async def rebuild_projection(
    *,
    uow: UnitOfWorkFactory,
    reader: TopicReader,
    groups: ConsumerGroups,
    cache: SubjectCache,
    book: PolicyBook,
    today: date,
    trace_limit: int,
) -> Rebuilt:
    """Rebuild the projection from the topics (see the module doc): one transaction
    holding the exclusive projection lock, then the consumer groups moved to the ends
    the replay read. ``cache`` and ``book`` start empty."""
    async with uow() as work:
        await work.projection.lock_all()
        await work.projection.clear()
        replay = await replay_sources(work, reader=reader)
        await book.refresh(work.projection)
        seeds: Sequence[str] = sorted(book.policies)  # revoked ones too: their results must go
        orphans = await work.results.policies_other_than(seeds)
        if orphans:
            log.warning(
                "results of policies on neither topic are kept as they are: %s", sorted(orphans)
            )
        plan = await recalculate_policies(
            work,
            cache=cache,
            book=book,
            seeds=seeds,
            today=today,
            cause=REBUILD_CAUSE,
            trace_limit=trace_limit,
        )
        await work.commit()
    moved = await groups.move(replay.ends)
    return Rebuilt(replay=replay, changed=plan.changes.height, moved=moved)
