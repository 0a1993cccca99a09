"""Writing changes: results, history and eligibility events, in the caller's transaction.

A change row is a dict with the fields of ``EligibilityChanged`` (less ``cause``).
Stored results are upserted, results that became ineligible are deleted, every
change is appended to the history, and one ``eligibility.changed`` event per change
goes to the outbox (``COPY``), keyed by enterprise id so a company's events stay in
order. The caller commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from reelpolicy_common import topics
from reelpolicy_common.events import Envelope, EventType
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.domain.outcomes import Change

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


async def write_changes(work: RulesUnitOfWork, rows: Sequence[ChangeRow], *, cause: str) -> int:
    """Store ``rows`` and queue their events; returns how many changes were written."""
    if not rows:
        return 0
    upserts, deletes, history, events = [], [], [], []
    for row in rows:
        event = eligibility_event(row, cause=cause)
        events.append(event)
        key = (row["subject_id"], row["policy_id"])
        if row["status"] == "ineligible":
            deletes.append(key)
        else:
            upserts.append(
                (row["subject_type"], row["subject_id"], row["policy_id"], row["enterprise_id"],
                 row["policy_version"], row["status"], row["amount_cny"], row["missing_fields"],
                 row["explanation"])
            )  # fmt: skip
        history.append(
            (row["subject_id"], row["policy_id"], row["enterprise_id"], row["policy_version"],
             row["previous_status"], row["status"], row["previous_amount_cny"], row["amount_cny"],
             cause, event.event_id)
        )  # fmt: skip
    await work.results.delete(deletes)
    await work.results.upsert(upserts)
    await work.results.add_history(history)
    await work.publish_many(topics.ELIGIBILITY, events)
    return len(rows)
