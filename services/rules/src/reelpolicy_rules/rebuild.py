"""``reelpolicy-rules rebuild``: rebuild the projection from the policy and registry topics.

Run it with the rules service stopped. It reads both topics from the beginning up to
their current end, applies every snapshot to freshly truncated projection tables
(newer versions win, as in the consumers), then re-evaluates every active policy in
bulk **against the kept results table**, so only real differences are emitted (cause
``rebuild``), and finally moves both consumer groups to the end offsets it read, so
the restarted service does not process those events again.
"""

from __future__ import annotations

import logging

from aiokafka import AIOKafkaConsumer, TopicPartition

from reelpolicy_common import topics
from reelpolicy_common.auth import apply_api_key_changed
from reelpolicy_common.db.pool import create_pool
from reelpolicy_common.events import (
    EnterpriseChanged,
    Envelope,
    EventType,
    PolicyPublished,
    PolicyRevoked,
    ProductionChanged,
    decode_envelope,
)
from reelpolicy_rules.adapters.cache import PolicyBook, SubjectCache
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.bootstrap import system_clock
from reelpolicy_rules.config import Settings
from reelpolicy_rules.domain.calendar import local_day
from reelpolicy_rules.domain.snapshots import is_newer, policy_applies
from reelpolicy_rules.entrypoints.consumers import group_ids
from reelpolicy_rules.handlers.bulk import run_bulk

log = logging.getLogger(__name__)
REBUILD_CAUSE = "rebuild"


async def apply_snapshot(work: RulesUnitOfWork, env: Envelope) -> None:
    p, t = work.projection, env.type
    if t is EventType.policy_published:
        pub = PolicyPublished.model_validate(env.payload)
        stored = await p.policy_state(pub.policy_id)
        if policy_applies(incoming=pub.version, stored=stored and stored[0], revoke=False):
            await p.store_policy(
                pub.policy_id, pub.version, {**pub.document, "version": pub.version}
            )
    elif t is EventType.policy_revoked:
        rev = PolicyRevoked.model_validate(env.payload)
        stored = await p.policy_state(rev.policy_id)
        if stored and policy_applies(incoming=rev.version, stored=stored[0], revoke=True):
            await p.revoke_policy(rev.policy_id)
    elif t in (EventType.enterprise_upserted, EventType.enterprise_deleted):
        e = EnterpriseChanged.model_validate(env.payload)
        if is_newer(incoming=e.version, stored=await p.enterprise_version(e.enterprise_id)):
            await p.store_enterprise(
                e.enterprise_id, e.version, deleted=e.deleted or t is EventType.enterprise_deleted,
                attributes=e.attributes.model_dump(mode="json"),
            )  # fmt: skip
    elif t in (EventType.production_upserted, EventType.production_deleted):
        d = ProductionChanged.model_validate(env.payload)
        if is_newer(incoming=d.version, stored=await p.production_version(d.production_id)):
            await p.store_production(
                d.production_id, d.enterprise_id, d.version,
                deleted=d.deleted or t is EventType.production_deleted,
                attributes=d.attributes.model_dump(mode="json"),
            )  # fmt: skip
    elif t is EventType.api_key_changed:
        await apply_api_key_changed(work.conn, env.payload)


async def _replay(settings: Settings, work: RulesUnitOfWork) -> dict[TopicPartition, int]:
    consumer = AIOKafkaConsumer(
        bootstrap_servers=settings.kafka_bootstrap_servers, enable_auto_commit=False
    )
    await consumer.start()
    try:
        tps = [
            TopicPartition(t, i) for t in (topics.POLICY, topics.REGISTRY)
            for i in range(topics.partitions(t))
        ]  # fmt: skip
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for tp, records in (await consumer.getmany(timeout_ms=500)).items():
                for record in records:
                    if record.offset < ends[tp]:
                        try:
                            env = decode_envelope(record.value)
                        except ValueError:
                            continue
                        await apply_snapshot(work, env)
        return ends
    finally:
        await consumer.stop()


async def _move_groups(settings: Settings, ends: dict[TopicPartition, int]) -> None:
    for topic, group in group_ids(settings.consumer_group).items():
        mine = {tp: off for tp, off in ends.items() if tp.topic == topic}
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=group,
            enable_auto_commit=False,
        )
        await consumer.start()
        try:
            consumer.assign(list(mine))
            await consumer.commit(mine)
        finally:
            await consumer.stop()


async def rebuild(settings: Settings) -> int:
    pool = await create_pool(settings.database_url, max_size=2)
    try:
        async with RulesUnitOfWork(pool) as work:
            await work.projection.lock_all()
            await work.conn.execute("TRUNCATE policies, enterprises, productions")
            ends = await _replay(settings, work)
            book, cache = PolicyBook(), SubjectCache()
            await book.refresh(work.conn)
            plan = await run_bulk(
                work, cache=cache, book=book, seeds=[p.id for p in book.active()],
                today=local_day(system_clock(), settings.timezone), cause=REBUILD_CAUSE,
                trace_limit=settings.bulk_trace_limit,
            )  # fmt: skip
            await work.commit()
        await _move_groups(settings, ends)
    finally:
        await pool.close()
    print(f"rebuilt the projection; {plan.changes.height} result(s) differed")
    return 0
