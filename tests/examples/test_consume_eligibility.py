"""The example consumer (examples/consume_eligibility.py) against the embedded broker.

Real ``eligibility.changed`` and ``policy.impact`` envelopes, built with the contracts'
models and published as the rules relay publishes them (key, ``event-type`` and
``schema-version`` headers), plus a duplicate of one, an event of a newer
``schema_version`` and an event type the example does not handle. The example runs as
its own process with its CLI; it must print every event exactly once, in order per
key, skip the rest, stop on SIGTERM with its offsets committed, and a second run in the
same group must print only what was published since.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EligibilityChanged, Envelope, EventType, PolicyImpact
from service_harness import eventually

pytestmark = pytest.mark.servers

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "consume_eligibility.py"
ENTERPRISES = ["ent-a", "ent-b", "ent-c", "ent-d"]


def changed(enterprise: str, n: int) -> Envelope:
    payload = EligibilityChanged(
        subject_type="production",
        subject_id=f"{enterprise}-prod",
        enterprise_id=enterprise,
        policy_id="zz-yellow-river",
        policy_version=n,
        previous_status="eligible",
        status="eligible",
        previous_amount_cny=1000 * n,
        amount_cny=1000 * (n + 1),
        cause=str(uuid.uuid4()),
    )
    return Envelope(
        type=EventType.eligibility_changed,
        producer="rules",
        key=enterprise,
        payload=payload.model_dump(mode="json"),
    )


def impact(policy_id: str, version: int) -> Envelope:
    payload = PolicyImpact(
        policy_id=policy_id,
        policy_version=version,
        newly_eligible=3,
        no_longer_eligible=1,
        amount_changed=2,
        eligible_total=40,
        total_potential_cny=1_200_000,
    )
    return Envelope(
        type=EventType.policy_impact,
        producer="rules",
        key=policy_id,
        payload=payload.model_dump(mode="json"),
    )


def headers(event_type: str, schema_version: int) -> list[tuple[str, bytes]]:
    """What the outbox relay puts on every record (trace context left out)."""
    return [("event-type", event_type.encode()), ("schema-version", str(schema_version).encode())]


async def publish(bootstrap_servers: str, records: list[tuple[str, bytes, str, int]]) -> None:
    """Publish (key, value, event type, schema version) in order."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, acks="all")
    await producer.start()
    try:
        for key, value, kind, version in records:
            await producer.send_and_wait(
                topics.ELIGIBILITY, value, key=key.encode(), headers=headers(kind, version)
            )
    finally:
        await producer.stop()


def record_of(envelope: Envelope) -> tuple[str, bytes, str, int]:
    return envelope.key, envelope.to_bytes(), envelope.type.value, envelope.schema_version


async def committed_to_end(bootstrap_servers: str, group: str) -> bool:
    """Whether ``group`` has committed every partition of the topic up to its end."""
    probe = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, enable_auto_commit=False)
    await probe.start()
    try:
        parts = [
            TopicPartition(topics.ELIGIBILITY, p)
            for p in probe.partitions_for_topic(topics.ELIGIBILITY) or ()
        ]
        ends = await probe.end_offsets(parts)
        admin_view = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers, group_id=group, enable_auto_commit=False
        )
        await admin_view.start()
        try:
            for tp in parts:
                if ends[tp] and (await admin_view.committed(tp) or 0) < ends[tp]:
                    return False
        finally:
            await admin_view.stop()
        return True
    finally:
        await probe.stop()


class Example:
    """The example as a process: its stdout lines as they come."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[dict[str, Any]] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def start(cls, *args: str) -> Example:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        return cls(process)

    async def _read(self) -> None:
        assert self.process.stdout is not None
        async for raw in self.process.stdout:
            self.lines.append(json.loads(raw))

    async def stop(self) -> tuple[int, str]:
        """SIGTERM, then its exit code and stderr."""
        self.process.send_signal(signal.SIGTERM)
        assert self.process.stderr is not None
        stderr = await asyncio.wait_for(self.process.stderr.read(), 30)
        code = await asyncio.wait_for(self.process.wait(), 30)
        await self._reader
        return code, stderr.decode()


def by_key(lines: list[dict[str, Any]]) -> dict[str, list[str]]:
    order: dict[str, list[str]] = {}
    for line in lines:
        order.setdefault(line["key"], []).append(line["event_id"])
    return order


async def test_the_example_prints_each_event_once_in_order_per_key(
    bootstrap_servers: str,
) -> None:
    await ensure_topics(bootstrap_servers=bootstrap_servers, names=[topics.ELIGIBILITY])
    events = [changed(e, n) for n in range(1, 6) for e in ENTERPRISES]
    events[8:8] = [impact("zz-yellow-river", 2), impact("sh-guidance-fund", 1)]
    duplicate = events[5]  # published again later, as a relay that died mid-batch would
    newer = changed("ent-a", 99).model_copy(update={"schema_version": 2})
    unknown = [("ent-b", b'{"not": "for this consumer"}', "eligibility.forecast", 1)]
    records = [record_of(e) for e in events]
    records[12:12] = [record_of(duplicate), record_of(newer), *unknown]
    await publish(bootstrap_servers, records)

    group = f"operator-{uuid.uuid4().hex[:8]}"
    args = ["--bootstrap-servers", bootstrap_servers, "--group", group]
    example = await Example.start(*args, "--from-beginning")
    await eventually(lambda: len(example.lines) >= len(events), timeout=60)
    await eventually(lambda: committed_to_end(bootstrap_servers, group), timeout=30)
    code, stderr = await example.stop()

    assert code == 0, stderr
    printed = [line["event_id"] for line in example.lines]
    assert sorted(printed) == sorted(str(e.event_id) for e in events)  # each once, no more
    assert by_key(example.lines) == by_key(
        [{"key": e.key, "event_id": str(e.event_id)} for e in events]
    )
    impacts = [line for line in example.lines if line["type"] == "policy.impact"]
    assert {(i["key"], i["payload"]["policy_id"]) for i in impacts} == {
        ("zz-yellow-river", "zz-yellow-river"),
        ("sh-guidance-fund", "sh-guidance-fund"),
    }
    assert str(newer.event_id) not in printed
    assert "unsupported schema_version 2" in stderr
    assert f"stopped after {len(events)} event(s)" in stderr

    # the same group resumes after what it committed: only the new event
    later = changed("ent-c", 6)
    await publish(bootstrap_servers, [record_of(later)])
    again = await Example.start(*args)
    await eventually(lambda: again.lines, timeout=60)
    await eventually(lambda: committed_to_end(bootstrap_servers, group), timeout=30)
    code, stderr = await again.stop()
    assert code == 0, stderr
    assert [line["event_id"] for line in again.lines] == [str(later.event_id)]
