"""``reelpolicy-rules rebuild``: rebuild the projection from the policy and registry topics.

**It relies on a snapshot, not on retention.** Event topics keep records for a stated
time (``reelpolicy_common.topics.config``): on Apache Kafka the oldest records of the
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

**Where a partition ends.** Not from ``ListOffsets`` (``consumer.end_offsets()``):
the embedded broker (Tansu 0.6) answers it with the last *record batch's* base offset
+ 1, not the next record offset (2,000 records produced in batches: 1,951; 300 records
in one batch: 1), so replaying to it would stop early and commit offsets behind
events the rebuild never applied. The high watermark of the **fetch responses** is
right on both Tansu and Apache Kafka (checked on Tansu: 2,000, 50, 303 and 0 for
partitions of 2,000 / 50 / 303 / 0 records, in the very first response), so a
partition's end is the first high watermark a fetch reports for it (aiokafka
``consumer.highwater(tp)``, set by every fetch response, also an empty one), and the
partition is done when the consumer's position reaches it (records at or past it
arrived after the rebuild started; the restarted service reads them). A partition is
read from offset 0 rather than from ``ListOffsets``' earliest; where retention has
removed the start (Apache Kafka), the fetch answers ``OFFSET_OUT_OF_RANGE`` and the
consumer resets to the earliest offset (``auto_offset_reset="earliest"``).

"Read until nothing new arrives for N ms" is deliberately *not* used: while rules is
stopped the registry and ingest relays keep producing, so a quiet period need not
come, and one that comes early (a slow fetch, a broker pause) would end the replay
short without anyone noticing. With a known end per partition the replay is complete
or it fails: if no record arrives and no partition gets closer to its end for
``stall_seconds``, the rebuild raises and rolls back (nothing committed, groups
untouched).

**Moving the groups**: see :mod:`reelpolicy_rules.adapters.consumer_groups`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from reelpolicy_common import topics
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.events import (
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
    SnapshotCompleted,
    decode_envelope,
)
from reelpolicy_common.kafka import kafka_consumer
from reelpolicy_policy import parse_policy
from reelpolicy_rules.adapters.cache import InMemoryPolicyBook, PolarsSubjectCache
from reelpolicy_rules.adapters.consumer_groups import JOIN_TIMEOUT_SECONDS, move_groups
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.bootstrap import system_clock
from reelpolicy_rules.config import Settings
from reelpolicy_rules.domain.calendar import local_day
from reelpolicy_rules.domain.snapshots import policy_applies
from reelpolicy_rules.entrypoints.consumers import group_ids
from reelpolicy_rules.handlers.policy_recalculation import recalculate_policies
from reelpolicy_rules.handlers.registry_events import (
    ENTERPRISE_TYPES,
    PRODUCTION_TYPES,
    snapshot_of,
    store_newer,
)

log = logging.getLogger(__name__)
REBUILD_CAUSE = "rebuild"
STALL_SECONDS = 60.0
"""No record and no partition closer to its end for this long: the replay fails."""
_FETCH_MAX_WAIT_MS = 100  # empty partitions answer (with their high watermark) quickly
SOURCES: dict[str, str] = {topics.POLICY: "ingest", topics.REGISTRY: "registry"}
"""The topics the projection is rebuilt from, and the service that republishes each."""


async def apply_snapshot(work: RulesUnitOfWork, env: Envelope) -> None:
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

    ends: dict[TopicPartition, int] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0
    snapshots: dict[str, SnapshotCompleted] = field(default_factory=dict)
    seen: dict[uuid.UUID, set[bytes]] = field(default_factory=dict)
    """Distinct event ids read per snapshot id (a relay may publish a record twice)."""


OnRecord = Callable[[TopicPartition, ConsumerRecord[Any, Any]], Awaitable[None]]


def _partitions(consumer: AIOKafkaConsumer, names: tuple[str, ...]) -> list[TopicPartition]:
    """Every partition of ``names``, as the broker's metadata has them (a cluster may
    have added registry partitions beyond the default count)."""
    tps = []
    for topic in names:
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise RuntimeError(f"topic {topic} does not exist on the broker")
        tps += [TopicPartition(topic, i) for i in sorted(found)]
    return tps


async def _read_to_ends(
    consumer: AIOKafkaConsumer,
    tps: list[TopicPartition],
    on_record: OnRecord,
    *,
    stall_seconds: float,
) -> dict[TopicPartition, int]:
    """Hand every record of ``tps`` below its partition's end to ``on_record`` (see the
    module doc); returns the ends."""
    ends: dict[TopicPartition, int] = {}
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    pending = set(tps)
    loop = asyncio.get_running_loop()
    progress_at = loop.time()
    while pending:
        batch = await consumer.getmany(timeout_ms=200)
        for tp in pending:
            # the first high watermark a fetch reports is the partition's end
            if tp not in ends and (high := consumer.highwater(tp)) is not None:
                ends[tp] = high
                progress_at = loop.time()
        for tp, records in batch.items():
            if tp not in ends:  # records come with the response's high watermark
                raise RuntimeError(f"records of {tp} arrived without a high watermark")
            for record in records:
                if record.offset >= ends[tp]:
                    continue  # written after the rebuild started: the service reads it
                progress_at = loop.time()
                await on_record(tp, record)
        for tp in list(pending):
            if tp in ends and await consumer.position(tp) >= ends[tp]:
                pending.discard(tp)
                consumer.pause(tp)
                progress_at = loop.time()
        if pending and loop.time() - progress_at > stall_seconds:
            behind = {
                f"{tp.topic}:{tp.partition}": (await consumer.position(tp), ends.get(tp))
                for tp in sorted(pending)
            }
            raise RuntimeError(
                f"replay stalled for {stall_seconds:.0f}s; partitions (position, end): {behind}"
            )
    return ends


def _snapshot_of(record: ConsumerRecord[Any, Any]) -> uuid.UUID | None:
    for name, value in record.headers or ():
        if name == topics.SNAPSHOT_HEADER:
            try:
                return uuid.UUID(value.decode())
            except ValueError:
                return None
    return None


def _republish_hint(topic: str) -> str:
    return f"reelpolicy-{SOURCES[topic]} republish"


async def _latest_snapshots(
    consumer: AIOKafkaConsumer, tps: list[TopicPartition], *, stall_seconds: float
) -> dict[str, SnapshotCompleted]:
    """The latest ``snapshot.completed`` marker of each source topic; refuses (before the
    long replay) if a source has none."""
    latest: dict[str, tuple[datetime, SnapshotCompleted]] = {}

    async def take(_: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
        try:
            env = decode_envelope(record.value)
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

    await _read_to_ends(consumer, tps, take, stall_seconds=stall_seconds)
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


async def _replay(
    settings: Settings, work: RulesUnitOfWork, *, stall_seconds: float = STALL_SECONDS
) -> Replay:
    """Apply every record of both topics below each partition's end, after finding each
    source's latest snapshot; refuse unless every such snapshot was read in full."""
    consumer = kafka_consumer(
        settings,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    replay = Replay()
    try:
        # all partitions first: once some are assigned, the metadata covers only those
        markers = _partitions(consumer, (topics.SNAPSHOTS,))
        tps = _partitions(consumer, tuple(SOURCES))
        replay.snapshots = await _latest_snapshots(consumer, markers, stall_seconds=stall_seconds)
        counted = {marker.snapshot_id for marker in replay.snapshots.values()}

        async def apply(tp: TopicPartition, record: ConsumerRecord[Any, Any]) -> None:
            try:
                env = decode_envelope(record.value)
            except ValueError as exc:
                replay.skipped += 1
                log.warning("skipped %s@%d: %s", tp, record.offset, exc)
                return
            snapshot = _snapshot_of(record)
            if snapshot in counted:  # read, even if the consumers would dead-letter it
                replay.seen.setdefault(snapshot, set()).add(env.event_id.bytes)
            try:
                await apply_snapshot(work, env)
            except ValueError as exc:
                replay.skipped += 1
                log.warning("skipped %s@%d: %s", tp, record.offset, exc)
            else:
                replay.applied += 1

        replay.ends = await _read_to_ends(consumer, tps, apply, stall_seconds=stall_seconds)
        _check_complete(replay)
        return replay
    finally:
        await consumer.stop()


async def rebuild(
    settings: Settings,
    *,
    stall_seconds: float = STALL_SECONDS,
    join_timeout: float = JOIN_TIMEOUT_SECONDS,
) -> int:
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        async with RulesUnitOfWork(pool) as work:
            await work.projection.lock_all()
            await work.projection.clear()
            replay = await _replay(settings, work, stall_seconds=stall_seconds)
            book, cache = InMemoryPolicyBook(), PolarsSubjectCache()
            await book.refresh(work.projection)
            seeds = sorted(book.policies)  # revoked ones too: their results must go
            orphans = await work.results.policies_other_than(seeds)
            if orphans:
                log.warning(
                    "results of policies on neither topic are kept as they are: %s",
                    sorted(orphans),
                )
            plan = await recalculate_policies(
                work, cache=cache, book=book, seeds=seeds,
                today=local_day(system_clock(), settings.timezone), cause=REBUILD_CAUSE,
                trace_limit=settings.bulk_trace_limit,
            )  # fmt: skip
            await work.commit()
        moved = await move_groups(
            settings, group_ids(settings.consumer_group), replay.ends, join_timeout=join_timeout
        )
    finally:
        await pool.close()
    used = ", ".join(
        f"{topic} {marker.snapshot_id} ({marker.records} record(s))"
        for topic, marker in sorted(replay.snapshots.items())
    )
    print(f"complete snapshots: {used}")
    print(
        f"rebuilt the projection from {replay.applied} record(s) ({replay.skipped} skipped);"
        f" {plan.changes.height} result(s) differed; consumer groups moved: {moved}"
    )
    return 0
