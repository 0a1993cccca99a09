"""``reelpolicy-rules rebuild``: rebuild the projection from the policy and registry topics.

Run it with the rules service stopped (every replica). In one transaction holding the
exclusive projection lock it truncates the projection tables (``policies``,
``enterprises``, ``productions``; ``results`` and their history are kept), reads both
topics from the beginning up to the end they had when the replay reached them, and
applies every snapshot as the consumers do (newer versions win; an invalid policy
document or an undecodable record is skipped, as the service dead-letters it). It then
re-evaluates in bulk every policy of the rebuilt projection, active **and revoked**,
against the kept results, so only real differences are written and emitted (cause
``rebuild``): a revocation the stopped service never saw takes the results away; a
policy that has results but is on neither topic is left alone (with a warning). After
that transaction commits, it moves both consumer groups to the end offsets it read, so
the restarted service does not handle those events again.

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
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, TopicPartition

from reelpolicy_common import topics
from reelpolicy_common.auth import apply_api_key_changed
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.events import (
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
    decode_envelope,
)
from reelpolicy_policy import parse_policy
from reelpolicy_rules.adapters.cache import PolicyBook, SubjectCache
from reelpolicy_rules.adapters.consumer_groups import JOIN_TIMEOUT_SECONDS, move_groups
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.bootstrap import system_clock
from reelpolicy_rules.config import Settings
from reelpolicy_rules.domain.calendar import local_day
from reelpolicy_rules.domain.snapshots import policy_applies
from reelpolicy_rules.entrypoints.consumers import group_ids
from reelpolicy_rules.handlers.bulk import run_bulk
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
        await apply_api_key_changed(work.conn, env.payload)


@dataclass
class Replay:
    """What a replay read: each partition's end (the offset to commit) and counts."""

    ends: dict[TopicPartition, int] = field(default_factory=dict)
    applied: int = 0
    skipped: int = 0


def _partitions(consumer: AIOKafkaConsumer) -> list[TopicPartition]:
    """Every partition of both topics, as the broker's metadata has them (a cluster may
    have added registry partitions beyond the default count)."""
    tps = []
    for topic in (topics.POLICY, topics.REGISTRY):
        found = consumer.partitions_for_topic(topic)
        if not found:
            raise RuntimeError(f"topic {topic} does not exist on the broker")
        tps += [TopicPartition(topic, i) for i in sorted(found)]
    return tps


async def _replay(
    settings: Settings, work: RulesUnitOfWork, *, stall_seconds: float = STALL_SECONDS
) -> Replay:
    """Apply every record of both topics below each partition's end (see the module doc)."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
    )
    await consumer.start()
    replay = Replay()
    try:
        tps = _partitions(consumer)
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
                if tp not in replay.ends and (high := consumer.highwater(tp)) is not None:
                    replay.ends[tp] = high
                    progress_at = loop.time()
            for tp, records in batch.items():
                if tp not in replay.ends:  # records come with the response's high watermark
                    raise RuntimeError(f"records of {tp} arrived without a high watermark")
                end = replay.ends[tp]
                for record in records:
                    if record.offset >= end:
                        continue  # written after the rebuild started: the service reads it
                    progress_at = loop.time()
                    try:
                        await apply_snapshot(work, decode_envelope(record.value))
                    except ValueError as exc:
                        replay.skipped += 1
                        log.warning("skipped %s@%d: %s", tp, record.offset, exc)
                    else:
                        replay.applied += 1
            for tp in list(pending):
                if tp in replay.ends and await consumer.position(tp) >= replay.ends[tp]:
                    pending.discard(tp)
                    consumer.pause(tp)
                    progress_at = loop.time()
            if pending and loop.time() - progress_at > stall_seconds:
                behind = {
                    f"{tp.topic}:{tp.partition}": (await consumer.position(tp), replay.ends.get(tp))
                    for tp in sorted(pending)
                }  # fmt: skip
                raise RuntimeError(
                    f"replay stalled for {stall_seconds:.0f}s; partitions (position, end): {behind}"
                )
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
            await work.conn.execute("TRUNCATE policies, enterprises, productions")
            replay = await _replay(settings, work, stall_seconds=stall_seconds)
            book, cache = PolicyBook(), SubjectCache()
            await book.refresh(work.conn)
            seeds = sorted(book.policies)  # revoked ones too: their results must go
            orphans = await work.conn.fetch(
                "SELECT DISTINCT policy_id FROM results WHERE NOT (policy_id = ANY($1::text[]))",
                seeds,
            )
            if orphans:
                log.warning(
                    "results of policies on neither topic are kept as they are: %s",
                    sorted(r["policy_id"] for r in orphans),
                )
            plan = await run_bulk(
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
    print(
        f"rebuilt the projection from {replay.applied} record(s) ({replay.skipped} skipped);"
        f" {plan.changes.height} result(s) differed; consumer groups moved: {moved}"
    )
    return 0
