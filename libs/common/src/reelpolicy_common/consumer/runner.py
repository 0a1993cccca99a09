"""Consuming with FastStream: commit after success, bounded retries, then the DLQ.

Each subscription is a batch subscriber with ``AckPolicy.MANUAL``. Records of a
batch are handled one by one in partition order: a handler that raises is retried
with exponential backoff and jitter (tenacity) up to ``max_attempts``; then the
original record (value, key, headers) plus the error goes to ``<topic>.dlq`` and
the partition moves on. A record that is not a valid envelope, or a handler that
raises :class:`PermanentError`, is dead-lettered at once.

Errors of the infrastructure (see :mod:`~reelpolicy_common.consumer.faults`) are
not the record's fault and never dead-letter it: handling stops at that record,
the consumer pauses and rewinds to it (see :mod:`~reelpolicy_common.consumer.outage`)
and tries again after a capped backoff, for as long as the outage lasts.

Offsets are committed only for records handled or dead-lettered (in the
background, see :mod:`~reelpolicy_common.consumer.commits`), so a crash
redelivers and the idempotent handlers skip what they already did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener
from aiokafka.structs import ConsumerRecord, TopicPartition
from faststream import AckPolicy
from faststream.kafka import KafkaBroker
from faststream.kafka.message import KafkaMessage
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from reelpolicy_common import metrics
from reelpolicy_common.consumer.batch import process_batch
from reelpolicy_common.consumer.commits import OffsetCommitter
from reelpolicy_common.consumer.documented import consumed_messages
from reelpolicy_common.consumer.faults import (
    InfrastructureError,
    PermanentError,
    is_infrastructure_error,
)
from reelpolicy_common.consumer.outage import OutageWait, rewind
from reelpolicy_common.consumer.types import (
    BatchHandler,
    ConsumedEvent,
    EventHandler,
    record_span_attributes,
)
from reelpolicy_common.telemetry import (
    context_from_headers,
    current_trace_headers,
    decode_kafka_headers,
)
from reelpolicy_contracts import topics
from reelpolicy_contracts.events.envelope import decode_envelope

__all__ = ["PermanentError", "RetryPolicy", "process_record", "subscribe_reliably"]

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.consumer")

DeadLetterPublisher = Callable[[ConsumerRecord[Any, Any], str, int], Awaitable[None]]


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int = 5
    initial_seconds: float = 0.2
    max_seconds: float = 10.0
    outage_max_seconds: float = 30.0
    """Longest wait between tries while an infrastructure error lasts (no attempt cap)."""


def _worth_retrying(exc: BaseException) -> bool:
    """A record error that might pass next time (infrastructure errors wait elsewhere)."""
    return not isinstance(exc, (PermanentError, ValueError)) and not is_infrastructure_error(exc)


async def process_record(
    record: ConsumerRecord[Any, Any],
    *,
    consumer: str,
    handler: EventHandler,
    retry: RetryPolicy,
    dead_letter: DeadLetterPublisher,
) -> bool:
    """Handle one record; True if handled, False if dead-lettered.

    Raises :class:`InfrastructureError` if an infrastructure error stopped it: the
    record is not handled and must be handled again.
    """
    headers = decode_kafka_headers(record.headers)
    with _tracer.start_as_current_span(
        f"{record.topic} process",
        context=context_from_headers(headers),
        kind=SpanKind.CONSUMER,
        attributes=record_span_attributes(record, consumer=consumer),
    ) as span:
        attempts = 0
        try:
            envelope = decode_envelope(record.value)
            span.set_attribute("messaging.message.id", str(envelope.event_id))
            event = ConsumedEvent(
                envelope,
                record.topic,
                record.partition,
                record.offset,
                headers,
                current_trace_headers().get("traceparent"),
            )
            retrying = AsyncRetrying(
                stop=stop_after_attempt(retry.max_attempts),
                wait=wait_exponential_jitter(
                    multiplier=retry.initial_seconds, max=retry.max_seconds
                ),
                retry=retry_if_exception(_worth_retrying),
                reraise=True,
            )
            async for attempt in retrying:
                with attempt:
                    attempts += 1
                    if attempts > 1:
                        metrics.CONSUMER_RETRIES.labels(consumer, record.topic).inc()
                    await handler(event)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            span.record_exception(exc)
            if is_infrastructure_error(exc):
                span.set_status(Status(StatusCode.ERROR, "infrastructure error; to be retried"))
                raise InfrastructureError(repr(exc)) from exc
            span.set_status(Status(StatusCode.ERROR, "dead-lettered"))
            log.warning(
                "dead-lettering %s[%d]@%d after %d attempt(s): %r",
                record.topic,
                record.partition,
                record.offset,
                attempts,
                exc,
            )
            await dead_letter(record, f"{type(exc).__name__}: {exc}"[:2000], max(attempts, 1))
            metrics.CONSUMER_MESSAGES.labels(consumer, record.topic, "dead_lettered").inc()
            return False
        metrics.CONSUMER_MESSAGES.labels(consumer, record.topic, "processed").inc()
        return True


def broker_dead_letter(
    broker: KafkaBroker, *, consumer: str, give_up_seconds: float = 10.0
) -> DeadLetterPublisher:
    """A dead-letter publisher that tries (with backoff) for ``give_up_seconds``, then
    raises :class:`InfrastructureError`: the record is handled again after the pause."""

    async def publish(record: ConsumerRecord[Any, Any], error: str, attempts: int) -> None:
        headers = decode_kafka_headers(record.headers)
        headers.update(
            {
                "dlq-error": error,
                "dlq-consumer": consumer,
                "dlq-attempts": str(attempts),
                "dlq-original-topic": record.topic,
                "dlq-original-partition": str(record.partition),
                "dlq-original-offset": str(record.offset),
            }
        )
        loop = asyncio.get_running_loop()
        deadline = loop.time() + give_up_seconds
        delay = 0.2
        while True:
            try:
                async with asyncio.timeout(max(deadline - loop.time(), 0.1)):
                    await broker.publish(
                        record.value or b"",
                        topic=topics.dead_letter(record.topic),
                        key=record.key,
                        headers=headers,
                    )
                return
            except Exception as exc:
                if loop.time() + delay >= deadline:
                    raise InfrastructureError(f"dead-letter publish failed: {exc!r}") from exc
                log.warning("dead-letter publish failed (%r); retrying in %.1fs", exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)

    return publish


async def _undecoded(message: KafkaMessage) -> KafkaMessage:
    """The batch message itself as the handler's body: the handlers decode envelopes.

    FastStream's default batch decoder parses every record into a message object and
    JSON-decodes its value, all of which :func:`decode_envelope` would do again. And
    with the message as the body, the handler needs no dependency injection for it
    (FastStream resolves a ``Context`` parameter in a worker thread, per batch).
    """
    return message


def subscribe_reliably(
    broker: KafkaBroker,
    *,
    topic_names: Sequence[str],
    group_id: str,
    consumer: str,
    handler: EventHandler,
    retry: RetryPolicy,
    max_records: int = 500,
    description: str | None = None,
    fetch_max_wait_ms: int = 500,
    batch_handler: BatchHandler | None = None,
    batch_size: int = 500,
    max_poll_interval_ms: int = 300_000,
    listener: ConsumerRebalanceListener | None = None,
) -> None:
    """Register a batch subscriber that handles, retries, dead-letters, then commits.

    With ``batch_handler``, a batch is first offered to it in chunks of ``batch_size``
    records (one transaction each); if a chunk fails, its records go one by one
    through ``handler`` with the usual retries and dead letters, so one bad record
    costs only itself. A chunk failed by the infrastructure is not handled at all.
    """
    dead_letter = broker_dead_letter(broker, consumer=consumer)
    commits = OffsetCommitter()
    outage = OutageWait(
        consumer=consumer,
        initial_seconds=retry.initial_seconds,
        max_seconds=retry.outage_max_seconds,
    )
    subscriber = broker.subscriber(
        *topic_names,
        group_id=group_id,
        batch=True,
        max_records=max_records,
        fetch_max_wait_ms=fetch_max_wait_ms,
        ack_policy=AckPolicy.MANUAL,
        max_poll_interval_ms=max_poll_interval_ms,
        listener=listener,
        auto_offset_reset="earliest",
        decoder=_undecoded,
        title=f"{consumer}:{','.join(topic_names)}",
        description=description,
    )

    # Handling a fetched batch past this long returns to polling (and goes on with the
    # rest after the next fetch) so that slow records cannot get the member evicted.
    poll_budget_seconds = max_poll_interval_ms / 2000
    lag_shown: set[tuple[str, int]] = set()

    async def handle(
        records: Sequence[ConsumerRecord[Any, Any]], *, until: float
    ) -> tuple[int, bool]:
        """Handle ``records`` in order until the loop time ``until``: how many were
        handled, and whether an infrastructure error stopped it."""
        loop = asyncio.get_running_loop()
        done = 0
        step = batch_size if batch_handler is not None else max(len(records), 1)
        try:
            for i in range(0, len(records), step):
                chunk = records[i : i + step]
                if done and loop.time() > until:
                    return done, False
                if batch_handler is not None and await process_batch(
                    chunk, consumer=consumer, batch_handler=batch_handler
                ):
                    done += len(chunk)
                    continue
                for record in chunk:
                    if done and loop.time() > until:
                        return done, False
                    await process_record(
                        record,
                        consumer=consumer,
                        handler=handler,
                        retry=retry,
                        dead_letter=dead_letter,
                    )
                    done += 1
        except InfrastructureError as fault:
            log.warning(
                "%s: infrastructure error at %s[%d]@%d (%s); waiting it out",
                consumer,
                records[done].topic,
                records[done].partition,
                records[done].offset,
                fault,
            )
            return done, True
        return done, False

    async def consume(body: Any) -> None:
        message: KafkaMessage = body
        records: tuple[ConsumerRecord[Any, Any], ...] = message.raw_message
        if not isinstance(message.consumer, AIOKafkaConsumer):
            # TestKafkaBroker's in-memory consumer: no group to stay in, nothing to pause
            done = 0
            while done < len(records):
                handled, stalled = await handle(records[done:], until=math.inf)
                done += handled
                if stalled:
                    await asyncio.sleep(outage.next_delay())
            outage.recovered()
            await message.ack()
            return
        until = asyncio.get_running_loop().time() + poll_budget_seconds
        done, stalled = await handle(records, until=until)
        if not stalled:
            outage.recovered()
        commits.handled(message.consumer, records[:done])
        if stalled:
            outage.pause(message.consumer, records[done:])
        elif done < len(records):  # out of time: poll, then go on with the rest
            rewind(message.consumer, records[done:])
        if not subscriber.running:  # stopping: commit before the consumer closes
            await commits.flush()
        _observe_lag(
            message.consumer, records[:done], consumer=consumer, group=group_id, shown=lag_shown
        )

    # The body stays the raw batch at run time; /asyncapi shows the topics' typed envelopes.
    documented = consumed_messages(topic_names)
    if documented is not None:
        consume.__annotations__["body"] = Annotated[Any, documented]
    subscriber(consume)


def _observe_lag(
    kafka_consumer: Any,
    records: Sequence[ConsumerRecord[Any, Any]],
    *,
    consumer: str,
    group: str,
    shown: set[tuple[str, int]],
) -> None:
    """Consumer lag per partition: the high watermark minus the next offset to handle.

    ``shown`` holds the partitions this member has a value for; those it no longer
    holds (a rebalance gave them to another member, which reports them) are dropped,
    so that a group's lag summed over its members counts each partition once.
    """
    last: dict[tuple[str, int], int] = {}
    for record in records:
        last[(record.topic, record.partition)] = record.offset
    for (topic, partition), offset in last.items():
        try:
            highwater = kafka_consumer.highwater(TopicPartition(topic, partition))
        except Exception:  # a fake consumer (TestKafkaBroker) has no watermarks
            continue
        if highwater is not None:
            metrics.CONSUMER_LAG.labels(consumer, group, topic, str(partition)).set(
                max(0, highwater - offset - 1)
            )
            shown.add((topic, partition))
    held = {(tp.topic, tp.partition) for tp in kafka_consumer.assignment()}
    for topic, partition in shown - held:
        with contextlib.suppress(KeyError):
            metrics.CONSUMER_LAG.remove(consumer, group, topic, str(partition))
        shown.discard((topic, partition))
