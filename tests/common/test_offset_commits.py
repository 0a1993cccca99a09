"""Background offset commits, with a fake consumer: what is committed, and when."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka.structs import ConsumerRecord, TopicPartition

from reelpolicy_common.consumer.commits import OffsetCommitter


def record(partition: int, offset: int) -> ConsumerRecord[bytes, bytes]:
    return ConsumerRecord("t", partition, offset, 0, 0, b"k", b"v", None, 1, 1, [])


class GatedConsumer:
    """Records each commit; a commit returns only when the test opens the gate."""

    def __init__(self, *, fail_first: bool = False) -> None:
        self.commits: list[dict[TopicPartition, int]] = []
        self.gate = asyncio.Event()
        self.fail_first = fail_first

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(offsets))
        await self.gate.wait()
        if self.fail_first and len(self.commits) == 1:
            raise RuntimeError("rebalance in progress")


async def test_the_offset_after_the_last_handled_record_of_each_partition_is_committed() -> None:
    consumer, commits = GatedConsumer(), OffsetCommitter()
    consumer.gate.set()
    commits.handled(consumer, [record(0, 4), record(1, 9), record(0, 5)])
    await commits.flush()
    assert consumer.commits == [{TopicPartition("t", 0): 6, TopicPartition("t", 1): 10}]


async def test_one_commit_in_flight_and_what_arrives_meanwhile_goes_in_the_next() -> None:
    consumer, commits = GatedConsumer(), OffsetCommitter()
    commits.handled(consumer, [record(0, 1)])
    await asyncio.sleep(0)  # the first commit is now waiting on the broker
    commits.handled(consumer, [record(0, 2)])
    commits.handled(consumer, [record(1, 7), record(0, 3)])
    assert len(consumer.commits) == 1  # handled() returned without waiting
    consumer.gate.set()
    await commits.flush()
    assert consumer.commits == [
        {TopicPartition("t", 0): 2},
        {TopicPartition("t", 0): 4, TopicPartition("t", 1): 8},
    ]


async def test_a_failed_commit_is_logged_and_later_offsets_are_still_committed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer, commits = GatedConsumer(fail_first=True), OffsetCommitter()
    commits.handled(consumer, [record(0, 1)])
    await asyncio.sleep(0)
    commits.handled(consumer, [record(0, 2)])
    with caplog.at_level(logging.WARNING):
        consumer.gate.set()
        await commits.flush()
    assert "offset commit failed" in caplog.text
    assert consumer.commits[-1] == {TopicPartition("t", 0): 3}


async def test_a_new_consumer_does_not_commit_the_old_ones_positions() -> None:
    old, new, commits = GatedConsumer(), GatedConsumer(), OffsetCommitter()
    commits.handled(old, [record(0, 1)])
    await asyncio.sleep(0)
    commits.handled(old, [record(1, 5)])  # queued behind the first commit
    commits.handled(new, [record(2, 3)])  # the subscriber reconnected meanwhile
    old.gate.set()
    new.gate.set()
    await commits.flush()
    assert old.commits == [{TopicPartition("t", 0): 2}]
    assert new.commits == [{TopicPartition("t", 2): 4}]
