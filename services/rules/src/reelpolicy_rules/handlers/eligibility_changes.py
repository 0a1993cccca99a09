"""Writing eligibility changes: results, history, ``eligibility.changed`` and
``eligibility.state`` outbox rows, in the caller's transaction.

A change row is a dict with the fields of ``EligibilityChanged`` (less ``cause``).
Stored results are upserted, results that became ineligible are deleted, every
change is appended to the history, and one ``eligibility.changed`` event per change
goes to the outbox (``COPY``), keyed by enterprise id so a company's events stay in
order. Each change also writes the (subject, policy)'s new current result to the
compacted state topic (``topics.ELIGIBILITY_STATE``, keyed by ``topics.state_key``):
an ``eligibility.state`` record while the result is stored (eligible or unknown), a
tombstone (null value) when it is deleted (ineligible: withdrawn, its subject deleted
or its policy revoked) — so the state topic mirrors the stored results, which is
what ``GET /v1/eligibility`` lists. The caller commits.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic_core import to_json

from reelpolicy_common.outbox.store import EncodedEvent
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_contracts.events.envelope import CURRENT_SCHEMA_VERSION
from reelpolicy_contracts.ids import derived_id, uuid7
from reelpolicy_rules.domain.outcomes import Change
from reelpolicy_rules.ports import UnitOfWork

log = logging.getLogger(__name__)
PRODUCER = "rules"
ChangeRow = dict[str, Any]


def change_row(change: Change) -> ChangeRow:
    o = change.after
    return {
        "subject_type": o.subject_type,
        "subject_id": o.subject_id,
        "enterprise_id": o.enterprise_id,
        "policy_id": o.policy_id,
        "policy_version": o.policy_version,
        "previous_status": change.previous_status,
        "status": o.status,
        "previous_amount_cny": change.previous_amount_cny,
        "amount_cny": o.amount_cny if o.stored else None,
        "missing_fields": list(o.missing_fields) if o.status == "unknown" else [],
        "explanation": o.explanation,
    }


def eligibility_event(row: ChangeRow, *, cause: str) -> Envelope:
    return Envelope(
        type=EventType.eligibility_changed,
        producer=PRODUCER,
        key=row["enterprise_id"],
        payload={**row, "cause": cause},
    )


class EnvelopeBytes:
    """The bytes of envelopes of one type without a pydantic model per event: exactly what
    ``Envelope.model_dump_json`` would produce for the same fields (same keys, order and
    formats), so ``decode_envelope`` accepts them; one ``occurred_at`` is shared by a batch
    (they commit together)."""

    def __init__(self, event_type: EventType, *, occurred_at: datetime | None = None) -> None:
        self._middle = (
            b'","type":'
            + to_json(event_type.value)
            + b',"schema_version":'
            + str(CURRENT_SCHEMA_VERSION).encode()
            + b',"occurred_at":'
            + to_json(occurred_at or datetime.now(UTC))
            + b',"producer":'
            + to_json(PRODUCER)
            + b',"key":'
        )

    def __call__(self, event_id: uuid.UUID, key: str, payload: dict[str, Any]) -> bytes:
        return b"".join(
            (
                b'{"event_id":"',
                str(event_id).encode(),
                self._middle,
                to_json(key),
                b',"payload":',
                to_json(payload),
                b"}",
            )
        )


class EventEncoder:
    """Builds ``eligibility.changed`` envelopes as bytes (:class:`EnvelopeBytes`)."""

    def __init__(self, *, occurred_at: datetime | None = None) -> None:
        self._envelope = EnvelopeBytes(EventType.eligibility_changed, occurred_at=occurred_at)

    def encode(
        self, row: ChangeRow, *, cause: str, event_id: uuid.UUID | None = None
    ) -> EncodedEvent:
        event_id = event_id or uuid7()
        key = row["enterprise_id"]
        value = self._envelope(event_id, key, {**row, "cause": cause})
        return EncodedEvent(event_id, key, EventType.eligibility_changed.value, value)


_STATE_FIELDS = (
    "subject_type",
    "subject_id",
    "enterprise_id",
    "policy_id",
    "policy_version",
    "status",
    "amount_cny",
    "missing_fields",
    "explanation",
)


class StateEncoder:
    """Builds ``eligibility.state`` records as bytes (:class:`EnvelopeBytes`), and
    tombstones (null values) for results that are no longer stored."""

    def __init__(self, *, occurred_at: datetime | None = None) -> None:
        self._envelope = EnvelopeBytes(EventType.eligibility_state, occurred_at=occurred_at)

    def encode(self, row: ChangeRow, *, cause: str, change_event_id: uuid.UUID) -> EncodedEvent:
        event_id = uuid7()
        key = topics.state_key(row["subject_type"], row["subject_id"], row["policy_id"])
        if row["status"] == "ineligible":  # not stored: the key's value is withdrawn
            return EncodedEvent(event_id, key, EventType.eligibility_state.value, None)
        payload = {name: row[name] for name in _STATE_FIELDS}
        payload["cause"] = cause
        payload["change_event_id"] = str(change_event_id)
        value = self._envelope(event_id, key, payload)
        return EncodedEvent(event_id, key, EventType.eligibility_state.value, value)


def change_event_id(row: ChangeRow, cause: str) -> uuid.UUID:
    """The id of the ``eligibility.changed`` event for ``row``.

    A change caused by an event (its id is ``cause``) gets an id derived from that event
    and the change itself, so deriving it again, as a rules database restored from an
    older backup does when it reads the topics again, publishes the same event id, which
    notify has already turned into an alert (its alert key derives from the event id)
    and skips. Other causes (``rebuild``, the scheduler's) may repeat a change for real:
    a fresh id.
    """
    if not _is_event_id(cause):
        return uuid7()
    return derived_id(cause, *(str(row[f]) for f in _CHANGE_FIELDS), prefix=cause)


_CHANGE_FIELDS = (
    "subject_type",
    "subject_id",
    "policy_id",
    "policy_version",
    "previous_status",
    "status",
    "previous_amount_cny",
    "amount_cny",
)


@functools.lru_cache(maxsize=1024)
def _is_event_id(cause: str) -> bool:
    # A policy change's thousands of changes share one cause: parse it once.
    try:
        uuid.UUID(cause)
    except ValueError:
        return False
    return True


async def write_changes(
    work: UnitOfWork, rows: Sequence[ChangeRow], *, cause: str | Sequence[str]
) -> int:
    """Store ``rows`` and queue their events; returns how many changes were written.

    ``cause`` is the event id every change cites, or one per row.
    """
    if not rows:
        return 0
    started = time.perf_counter()
    encoder = EventEncoder()
    causes = [cause] * len(rows) if isinstance(cause, str) else list(cause)
    event_ids = [change_event_id(row, c) for row, c in zip(rows, causes, strict=True)]
    upserts, deletes, history = [], [], []
    for row, event_id, row_cause in zip(rows, event_ids, causes, strict=True):
        key = (row["subject_id"], row["policy_id"])
        if row["status"] == "ineligible":
            deletes.append(key)
        else:
            upserts.append(
                (
                    row["subject_type"],
                    row["subject_id"],
                    row["policy_id"],
                    row["enterprise_id"],
                    row["policy_version"],
                    row["status"],
                    row["amount_cny"],
                    row["missing_fields"],
                    row["explanation"],
                )
            )
        history.append(
            (
                row["subject_id"],
                row["policy_id"],
                row["enterprise_id"],
                row["policy_version"],
                row["previous_status"],
                row["status"],
                row["previous_amount_cny"],
                row["amount_cny"],
                row_cause,
                event_id,
            )
        )
    # encoded lazily while the outbox COPY streams, so PostgreSQL ingests as Python encodes
    events = (
        encoder.encode(row, cause=row_cause, event_id=event_id)
        for row, event_id, row_cause in zip(rows, event_ids, causes, strict=True)
    )
    t_rows = time.perf_counter()
    await work.results.replace(deletes, upserts)
    t_results = time.perf_counter()
    await work.results.add_history(history)
    t_history = time.perf_counter()
    await work.publish_encoded(topics.ELIGIBILITY, events, count=len(rows))
    state = StateEncoder()
    states = (
        state.encode(row, cause=row_cause, change_event_id=event_id)
        for row, event_id, row_cause in zip(rows, event_ids, causes, strict=True)
    )
    await work.publish_encoded(topics.ELIGIBILITY_STATE, states, count=len(rows))
    if len(rows) >= 1000:
        log.info(
            "wrote %d change(s): rows %.2fs, results %.2fs, history %.2fs,"
            " encode+outbox (changes and states) %.2fs",
            len(rows),
            t_rows - started,
            t_results - t_rows,
            t_history - t_results,
            time.perf_counter() - t_history,
        )
    return len(rows)
