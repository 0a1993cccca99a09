"""Reading whole topics for ``reelpolicy-rules rebuild``: every partition from its start up
to the end it had when the read reached it (aiokafka).

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
``stall_seconds``, the read raises (and the rebuild rolls back: nothing committed,
groups untouched).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

from reelpolicy_common.kafka import kafka_consumer
from reelpolicy_rules.config import Settings
from reelpolicy_rules.ports import OnRecord, Partition

STALL_SECONDS = 60.0
"""No record and no partition closer to its end for this long: the replay fails."""
_FETCH_MAX_WAIT_MS = 100  # empty partitions answer (with their high watermark) quickly


class KafkaTopicReader:
    """One consumer (no group, nothing committed) reading topics to their ends."""

    def __init__(self, settings: Settings, *, stall_seconds: float = STALL_SECONDS) -> None:
        self._settings = settings
        self._stall_seconds = stall_seconds
        self._consumer: AIOKafkaConsumer | None = None
        self._partitions: dict[str, list[TopicPartition]] = {}

    async def open(self, topic_names: Sequence[str]) -> None:
        consumer = kafka_consumer(
            self._settings,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
        )
        await consumer.start()
        self._consumer = consumer
        # all partitions first: once some are assigned, the metadata covers only those
        self._partitions = {topic: self._find_partitions(topic) for topic in topic_names}

    async def close(self) -> None:
        if self._consumer is not None:
            await self._consumer.stop()
            self._consumer = None

    def _find_partitions(self, topic: str) -> list[TopicPartition]:
        """Every partition of ``topic``, as the broker's metadata has them (a cluster may
        have added registry partitions beyond the default count)."""
        assert self._consumer is not None
        found = self._consumer.partitions_for_topic(topic)
        if not found:
            raise RuntimeError(f"topic {topic} does not exist on the broker")
        return [TopicPartition(topic, i) for i in sorted(found)]

    async def read_to_ends(
        self, topic_names: Sequence[str], on_record: OnRecord
    ) -> dict[Partition, int]:
        """Hand every record of ``topic_names`` below its partition's end to
        ``on_record`` (see the module doc); returns the ends."""
        consumer = self._consumer
        if consumer is None:
            raise RuntimeError("the topic reader is not open")
        tps = [tp for topic in topic_names for tp in self._partitions[topic]]
        stall_seconds = self._stall_seconds
        ends: dict[Partition, int] = {}
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
                    await on_record(record)
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
