"""The outbox publisher partitions keys exactly as aiokafka's ``send`` would."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from reelpolicy_common.kafka import key_hash


def testkey_hash_picks_the_partition_the_default_partitioner_picks() -> None:
    for count in (1, 3, 12):
        partitions = list(range(count))
        for n in range(500):
            key = f"0193a7c2-{n:04x}-7000-8000-{n * 7919:012x}".encode()
            expected = DefaultPartitioner()(key, partitions, partitions)
            assert partitions[key_hash(key) % count] == expected
