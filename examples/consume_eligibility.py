"""Consume ``reelpolicy.eligibility.v1`` as a platform operator: a small, complete example.

Reads the eligibility topic with plain aiokafka in a consumer group of your own, parses
each record with the contracts package (``reelpolicy-contracts``: pydantic only), skips
event ids it has already handled, and prints one JSON line per event to stdout. Offsets
are committed only after the records before them were handled, so a crash or a restart
delivers the uncommitted ones again, and the dedupe by ``event_id`` makes that harmless.

    python examples/consume_eligibility.py --bootstrap-servers 127.0.0.1:9092 \\
        --group acme-eligibility --from-beginning

Ctrl-C or SIGTERM stops it gracefully: the batch in hand is finished, its offsets are
committed, the consumer leaves the group, exit code 0. See docs/consuming-events.md.

What to change for real use (each is marked ``# YOUR SYSTEM`` below):

- ``handle``: apply the event to your own store instead of printing it.
- ``SeenIds``: remembers event ids in memory only, so a restart forgets them, and a
  record redelivered after the restart (its offset was not committed yet) is handled
  again. Persist the id **in the same transaction as the effect** (a table with a
  unique ``event_id``; a unique violation means "done already, skip"), as the services
  themselves do (``processed_events``).
- Records you cannot handle: this example logs them to stderr and moves on. Keep them
  in a dead-letter topic or table of *your own* (not ``reelpolicy.eligibility.v1.dlq``,
  which belongs to the platform's consumers and trips its alerts).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError
from aiokafka.helpers import create_ssl_context

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import (
    EligibilityChanged,
    Envelope,
    EventType,
    PolicyImpact,
    decode_envelope,
)

HANDLED_TYPES: dict[str, type[EligibilityChanged] | type[PolicyImpact]] = {
    EventType.eligibility_changed.value: EligibilityChanged,
    EventType.policy_impact.value: PolicyImpact,
}
"""The event types of the topic and their payload models. A type not listed here (one a
later release may add) is skipped, not treated as an error."""


class SeenIds:
    """The event ids handled lately, the oldest forgotten beyond ``capacity``.

    In memory only (see the module's docstring): a duplicate is a record published
    twice (the outbox relay publishes at least once) or redelivered (offsets not yet
    committed when a consumer stopped or lost its partitions); both come soon after the
    first, so a bounded window catches them while this process lives.
    """

    def __init__(self, capacity: int = 1_000_000) -> None:
        self._ids: OrderedDict[uuid.UUID, None] = OrderedDict()
        self._capacity = capacity

    def first_time(self, event_id: uuid.UUID) -> bool:
        """True the first time ``event_id`` is seen (and remember it)."""
        if event_id in self._ids:
            return False
        self._ids[event_id] = None
        if len(self._ids) > self._capacity:
            self._ids.popitem(last=False)
        return True


def event_line(envelope: Envelope, payload: EligibilityChanged | PolicyImpact) -> dict[str, Any]:
    """What this example prints for one event (one JSON line)."""
    return {
        "event_id": str(envelope.event_id),
        "type": envelope.type.value,
        "key": envelope.key,
        "occurred_at": envelope.occurred_at.isoformat(),
        "payload": payload.model_dump(mode="json"),
    }


def print_event(line: dict[str, Any]) -> None:  # YOUR SYSTEM: apply it to your store
    print(json.dumps(line, ensure_ascii=False), flush=True)


def _header(record: Any, name: str) -> str | None:
    for key, value in record.headers or ():
        if key == name:
            return bytes(value).decode()
    return None


def parse(record: Any) -> tuple[Envelope, EligibilityChanged | PolicyImpact] | None:
    """The envelope and its typed payload; None for an event type this consumer does not
    handle. Raises ``ValueError`` (pydantic's ``ValidationError`` is one) for a record
    that is not a valid event of a known version."""
    kind = _header(record, "event-type")  # set by the platform's relay: skip without parsing
    if kind is not None and kind not in HANDLED_TYPES:
        return None
    envelope = decode_envelope(record.value)  # refuses a schema_version newer than it knows
    model = HANDLED_TYPES.get(envelope.type.value)
    if model is None:
        return None
    return envelope, model.model_validate(envelope.payload)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commits what was handled before a rebalance takes partitions away, so the next
    owner starts after it (what it would redeliver anyway is skipped by its event id)."""

    def __init__(self, consumer: AIOKafkaConsumer, handled: dict[TopicPartition, int]) -> None:
        self._consumer = consumer
        self._handled = handled

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        offsets = {tp: self._handled.pop(tp) for tp in revoked if tp in self._handled}
        if offsets:
            try:
                await self._consumer.commit(offsets)
            except CommitFailedError as exc:  # the group moved on already: redelivered, skipped
                print(f"commit on revoke failed: {exc!r}", file=sys.stderr)

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        pass


def security_options(args: argparse.Namespace) -> dict[str, Any]:
    """aiokafka's connection arguments, as the services build them (TLS, SASL)."""
    options: dict[str, Any] = {"security_protocol": args.security_protocol}
    if args.security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=args.ssl_ca_file)
    if args.security_protocol.startswith("SASL_"):
        options["sasl_mechanism"] = args.sasl_mechanism
        options["sasl_plain_username"] = args.sasl_username
        options["sasl_plain_password"] = os.environ.get("KAFKA_SASL_PASSWORD")
    return options


async def consume(
    *,
    bootstrap_servers: str,
    group: str,
    from_beginning: bool,
    stop: asyncio.Event,
    handle: Callable[[dict[str, Any]], None] = print_event,
    connection: dict[str, Any] | None = None,
) -> int:
    """Consume until ``stop`` is set; returns how many events were handled."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers,
        group_id=group,
        enable_auto_commit=False,  # commit only what was handled
        # where a group with no committed offset starts; a group that has committed
        # offsets always resumes from them (replaying: a new group, or reset its offsets)
        auto_offset_reset="earliest" if from_beginning else "latest",
        **(connection or {}),
    )
    handled: dict[TopicPartition, int] = {}  # partition -> next offset to commit
    consumer.subscribe([topics.ELIGIBILITY], listener=_CommitOnRevoke(consumer, handled))
    seen = SeenIds()
    count = 0
    await consumer.start()
    try:
        while not stop.is_set():
            batches = await consumer.getmany(timeout_ms=500, max_records=500)
            for tp, records in batches.items():
                for record in records:  # in partition order: per-key order holds
                    try:
                        parsed = parse(record)
                    except ValueError as exc:  # YOUR SYSTEM: your own dead-letter store
                        print(
                            f"skipped {tp.topic}[{tp.partition}]@{record.offset}: {exc!r}",
                            file=sys.stderr,
                        )
                        parsed = None
                    if parsed is not None and seen.first_time(parsed[0].event_id):
                        handle(event_line(*parsed))
                        count += 1
                    handled[tp] = record.offset + 1
            held = consumer.assignment()  # a rebalance may have taken some away meanwhile
            offsets = {tp: offset for tp, offset in handled.items() if tp in held}
            handled.clear()
            if offsets:
                try:
                    await consumer.commit(offsets)
                except CommitFailedError as exc:  # a rebalance: redelivered, then skipped
                    print(f"commit failed: {exc!r}", file=sys.stderr)
    finally:
        await consumer.stop()  # leaves the group, so its partitions move at once
    return count


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument(
        "--group", required=True, help="your consumer group id (never a reelpolicy-* one)"
    )
    parser.add_argument(
        "--from-beginning",
        action="store_true",
        help="a new group starts at the oldest record kept (default: only new records)",
    )
    parser.add_argument(
        "--security-protocol",
        default="PLAINTEXT",
        choices=["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"],
    )
    parser.add_argument(
        "--sasl-mechanism", choices=["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"], default=None
    )
    parser.add_argument(
        "--sasl-username", default=None, help="the password is read from KAFKA_SASL_PASSWORD"
    )
    parser.add_argument("--ssl-ca-file", default=None, help="CA of the broker's certificate")
    return parser.parse_args(argv)


async def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    count = await consume(
        bootstrap_servers=args.bootstrap_servers,
        group=args.group,
        from_beginning=args.from_beginning,
        stop=stop,
        connection=security_options(args),
    )
    print(f"stopped after {count} event(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
