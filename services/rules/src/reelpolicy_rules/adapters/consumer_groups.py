"""The rules consumer groups: their ids, and moving them to given offsets
(``reelpolicy-rules rebuild``).

Each consumed topic has its own group (``<CONSUMER_GROUP>.policy`` /
``<CONSUMER_GROUP>.registry``), so a long policy run never holds up the registry
partitions' group membership.

**Moving the groups.** First as a standalone commit (generation -1, no membership):
Apache Kafka accepts it for an empty group, as does Tansu for a group nobody has
joined yet. Tansu refuses it (``UNKNOWN_MEMBER_ID``) for a group that has had a
member (still a minute after it left), so then the rebuild joins the group, waits
until it alone holds every partition and commits in its generation (on Tansu the join
waits out the previous members' sessions: about 18 s after a service that used the
default session timeout). If it never holds them all, another member is alive (the
service is still running) and the rebuild fails after ``join_timeout`` seconds. The
database is committed first: if moving a group fails, the restarted service re-reads
those events, which changes nothing (snapshots apply only if newer; only real
differences are emitted).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from aiokafka import ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError

from reelpolicy_common.kafka import kafka_consumer
from reelpolicy_contracts import topics
from reelpolicy_rules.config import Settings
from reelpolicy_rules.ports import Partition

log = logging.getLogger(__name__)
JOIN_TIMEOUT_SECONDS = 180.0
"""How long the rebuild waits to become a consumer group's only member."""
_COORDINATOR_LOG = "aiokafka.consumer.group_coordinator"


def group_ids(base: str) -> dict[str, str]:
    """Topic -> the id of the rules consumer group that reads it (``base``: ``CONSUMER_GROUP``)."""
    return {topics.POLICY: f"{base}.policy", topics.REGISTRY: f"{base}.registry"}


class _WithoutRefusals(logging.Filter):
    """Drops aiokafka's error line per partition when ``group`` refuses a standalone
    commit: the refusal is expected (the rebuild then joins the group)."""

    def __init__(self, group: str) -> None:
        super().__init__()
        self._prefix = f"OffsetCommit failed for group {group} "

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self._prefix)


@contextlib.contextmanager
def _filtered(logger: logging.Logger, flt: logging.Filter) -> Iterator[None]:
    logger.addFilter(flt)
    try:
        yield
    finally:
        logger.removeFilter(flt)


async def _move_group(
    settings: Settings, group: str, offsets: dict[TopicPartition, int], *, join_timeout: float
) -> str:
    """Commit ``offsets`` for ``group``; returns how ("standalone" or "joined")."""
    common: dict[str, Any] = {"group_id": group, "enable_auto_commit": False}
    consumer = kafka_consumer(settings, **common)
    await consumer.start()
    try:
        consumer.assign(list(offsets))
        with _filtered(logging.getLogger(_COORDINATOR_LOG), _WithoutRefusals(group)):
            await consumer.commit(offsets)
        return "standalone"
    except CommitFailedError:
        log.info("group %s refuses a standalone commit; joining it to commit", group)
    finally:
        await consumer.stop()
    alone = asyncio.Event()

    class _Alone(ConsumerRebalanceListener):  # type: ignore[misc]
        async def on_partitions_revoked(self, revoked: object) -> None:
            alone.clear()

        async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
            if set(assigned) == set(offsets):
                alone.set()

    member = kafka_consumer(settings, **common)
    await member.start()
    try:
        member.subscribe(sorted({tp.topic for tp in offsets}), listener=_Alone())
        try:
            async with asyncio.timeout(join_timeout):
                await alone.wait()
        except TimeoutError:
            held = sorted(tp.partition for tp in member.assignment())
            raise RuntimeError(
                f"did not become the only member of group {group} within {join_timeout:.0f}s"
                f" (holding partitions {held}): is the rules service still running? The"
                " projection is rebuilt; the group's offsets were not moved."
            ) from None
        await member.commit(offsets)
        return "joined"
    finally:
        await member.stop()


async def move_groups(
    settings: Settings,
    groups: dict[str, str],
    ends: dict[TopicPartition, int],
    *,
    join_timeout: float,
) -> dict[str, str]:
    """Commit ``ends`` for the group of each topic (``groups``: topic -> group id)."""
    moves = {
        group: {tp: off for tp, off in ends.items() if tp.topic == topic}
        for topic, group in groups.items()
    }
    how = await asyncio.gather(
        *(_move_group(settings, g, o, join_timeout=join_timeout) for g, o in moves.items())
    )
    return dict(zip(moves, how, strict=True))


class KafkaConsumerGroups:
    """The consumer groups of ``settings.consumer_group``, moved as :func:`move_groups` does."""

    def __init__(self, settings: Settings, *, join_timeout: float = JOIN_TIMEOUT_SECONDS) -> None:
        self._settings = settings
        self._join_timeout = join_timeout

    async def move(self, ends: Mapping[Partition, int]) -> dict[str, str]:
        offsets = {TopicPartition(*tp): offset for tp, offset in ends.items()}
        return await move_groups(
            self._settings,
            group_ids(self._settings.consumer_group),
            offsets,
            join_timeout=self._join_timeout,
        )
