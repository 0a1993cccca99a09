"""The gauge of dead letters waiting for a replay: ``reelpolicy_dead_letters_waiting``.

A record a consumer gives up on goes to ``<topic>.dlq`` (:mod:`~reelpolicy_common.consumer.runner`)
and stays there until someone fixes the cause and replays it (``reelpolicy-dev
replay-dlq <topic>``, whose consumer group :func:`replay_group` remembers how far it
got). Waiting, per original topic, is the end offset of each ``.dlq`` partition minus
the replay group's committed offset (or minus the partition's first offset, before any
replay). Every service that consumes a topic reports it for that topic, from the
broker, every :data:`EVERY_SECONDS`; the alert rules take the largest report.

The topic's end comes from ``ListOffsets``, which the embedded broker answers with the
last record *batch*'s base offset + 1 (see :mod:`reelpolicy_rules.rebuild`): right for
dead-letter topics, whose records are published one at a time.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.structs import TopicPartition

from reelpolicy_common.kafka import KafkaSecurity, admin_client, kafka_consumer
from reelpolicy_common.metrics import DEAD_LETTERS_WAITING
from reelpolicy_common.settings import ServiceSettings
from reelpolicy_common.supervisor import heartbeat
from reelpolicy_contracts import topics

log = logging.getLogger(__name__)

EVERY_SECONDS = 30.0
TIMEOUT_SECONDS = 10.0
"""A count that takes longer (a broker outage) is abandoned until the next one."""


def replay_group(topic: str) -> str:
    """The consumer group that replays ``<topic>.dlq`` back to ``topic``."""
    return f"reelpolicy-dlq-replay-{topic}"


async def count_waiting(consumer: Any, admin: Any, names: Sequence[str]) -> dict[str, int]:
    """Dead letters of each topic of ``names`` not replayed yet.

    ``consumer`` is a started aiokafka consumer without a group (for the partitions'
    offsets), ``admin`` a started admin client (for the partitions and the replay
    groups' offsets). A topic whose ``.dlq`` does not exist has none waiting.
    """
    described = await admin.describe_topics([topics.dead_letter(t) for t in names])
    partitions = {
        d["topic"]: sorted(p["partition"] for p in d["partitions"])
        for d in described
        if d["error_code"] == 0
    }
    waiting: dict[str, int] = {}
    for topic in names:
        tps = [
            TopicPartition(topics.dead_letter(topic), p)
            for p in partitions.get(topics.dead_letter(topic), [])
        ]
        if not tps:
            waiting[topic] = 0
            continue
        ends = await consumer.end_offsets(tps)
        firsts = await consumer.beginning_offsets(tps)
        replayed = await admin.list_consumer_group_offsets(replay_group(topic), partitions=tps)
        total = 0
        for tp in tps:
            committed = replayed.get(tp)
            start = firsts[tp]
            if committed is not None and committed.offset >= 0:
                start = max(start, committed.offset)
            total += max(0, ends[tp] - start)
        waiting[topic] = total
    return waiting


async def watch_dead_letters(
    settings: ServiceSettings,
    names: Sequence[str],
    *,
    every_seconds: float = EVERY_SECONDS,
    timeout_seconds: float = TIMEOUT_SECONDS,
) -> None:
    """Set the gauge for ``names`` now and every ``every_seconds``, for good.

    It never raises: a count the broker does not answer is logged and the clients are
    made again for the next one (an outage is the broker alert's, not this task's).
    """
    clients: tuple[Any, Any] | None = None
    try:
        while True:
            heartbeat(within=every_seconds + timeout_seconds)
            try:
                async with asyncio.timeout(timeout_seconds):
                    if clients is None:
                        clients = await _start_clients(settings)
                    counts = await count_waiting(*clients, names)
                for topic, waiting in counts.items():
                    DEAD_LETTERS_WAITING.labels(topic).set(waiting)
            except Exception as exc:
                log.warning(
                    "counting dead letters failed: %r; next try in %.0fs", exc, every_seconds
                )
                if clients is not None:
                    await _close(clients)
                    clients = None
            await asyncio.sleep(every_seconds)
    finally:
        if clients is not None:
            await _close(clients)


async def _start_clients(settings: ServiceSettings) -> tuple[Any, Any]:
    consumer = kafka_consumer(settings, group_id=None, enable_auto_commit=False)
    admin = admin_client(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        security=KafkaSecurity.from_settings(settings),
    )
    try:
        await consumer.start()
        await admin.start()
    except BaseException:
        await _close((consumer, admin))
        raise
    return consumer, admin


async def _close(clients: tuple[Any, Any]) -> None:
    consumer, admin = clients
    for close in (consumer.stop, admin.close):
        try:
            async with asyncio.timeout(TIMEOUT_SECONDS):
                await close()
        except Exception as exc:
            log.debug("closing a dead-letter count client: %r", exc)
