"""Handling a consumed batch in one go: one CONSUMER span per record, one handler call.

A handler that applies many events in one transaction saves the per-event round
trips (begin, idempotency record, effect, commit) that dominate a busy consumer.
It is all or nothing: when it fails (or a record is not a valid envelope), nothing
of the batch was applied, and the caller falls back to record-by-record handling
with its retries and dead letters. Not when the infrastructure failed it: then
:class:`~reelpolicy_common.consumer.faults.InfrastructureError` tells the caller
that none of the batch was handled, to be tried again once the outage is over
(one by one, every record would fail the same way and be dead-lettered).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from aiokafka.structs import ConsumerRecord
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from reelpolicy_common import metrics
from reelpolicy_common.consumer.faults import InfrastructureError, is_infrastructure_error
from reelpolicy_common.consumer.types import (
    BatchHandler,
    ConsumedEvent,
    record_span_attributes,
)
from reelpolicy_common.telemetry import (
    context_from_headers,
    current_trace_headers,
    decode_kafka_headers,
)
from reelpolicy_contracts.events.envelope import decode_envelope

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.consumer")


async def process_batch(
    records: Sequence[ConsumerRecord[Any, Any]],
    *,
    consumer: str,
    batch_handler: BatchHandler,
) -> bool:
    """Offer every record to ``batch_handler`` at once; True if it succeeded.

    Raises :class:`InfrastructureError` if it failed for the infrastructure's sake.
    """

    spans: list[Span] = []
    events: list[ConsumedEvent] = []
    try:
        for record in records:
            headers = decode_kafka_headers(record.headers)
            span = _tracer.start_span(
                f"{record.topic} process",
                context=context_from_headers(headers),
                kind=SpanKind.CONSUMER,
                attributes={
                    **record_span_attributes(record, consumer=consumer),
                    "messaging.batch.message_count": len(records),
                },
            )
            spans.append(span)
            envelope = decode_envelope(record.value)
            span.set_attribute("messaging.message.id", str(envelope.event_id))
            if span.is_recording():
                with trace.use_span(span, end_on_exit=False):
                    traceparent = current_trace_headers().get("traceparent")
            else:  # not tracing here: what follows continues the producer's span
                valid = span.get_span_context().is_valid  # the header parsed
                traceparent = headers.get("traceparent") if valid else None
            events.append(
                ConsumedEvent(
                    envelope, record.topic, record.partition, record.offset, headers, traceparent
                )
            )
        await batch_handler(events)
    except Exception as exc:
        infrastructure = is_infrastructure_error(exc)
        outcome = "to be tried again" if infrastructure else "retried one by one"
        log.info("batch of %d failed (%r); %s", len(records), exc, outcome)
        for span in spans:
            span.set_status(Status(StatusCode.ERROR, f"batch failed; {outcome}"))
            span.end()
        if infrastructure:
            raise InfrastructureError(repr(exc)) from exc
        return False
    for span in spans:
        span.end()
    for record in records:
        metrics.CONSUMER_MESSAGES.labels(consumer, record.topic, "processed").inc()
    return True
