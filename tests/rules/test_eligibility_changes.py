"""Eligibility changes as written to the outbox: the envelopes encoded without a model."""

from __future__ import annotations

from datetime import UTC, datetime

from reelpolicy_contracts.events import EligibilityChanged, EventType, decode_envelope
from reelpolicy_rules.handlers.eligibility_changes import (
    PRODUCER,
    EventEncoder,
    eligibility_event,
)


def test_encoded_eligibility_event_decodes_as_the_envelope() -> None:
    row = {
        "subject_type": "production",
        "subject_id": "p-1",
        "enterprise_id": "e-1",
        "policy_id": "zz-yellow-river",
        "policy_version": 3,
        "previous_status": "eligible",
        "status": "unknown",
        "previous_amount_cny": 300_000,
        "amount_cny": None,
        "missing_fields": ["production.budget_cny"],
        "explanation": {"mode": "bulk", "hint": "提供 budget", "nested": [1, 2.5, None, True]},
    }
    when = datetime(2026, 11, 22, 3, 14, 42, 123456, tzinfo=UTC)
    encoded = EventEncoder(occurred_at=when).encode(row, cause="clock")
    decoded = decode_envelope(encoded.value)
    assert decoded.event_id == encoded.event_id
    assert decoded.type is EventType.eligibility_changed
    assert encoded.event_type == decoded.type.value
    assert decoded.producer == PRODUCER
    assert decoded.key == "e-1" == encoded.key
    assert decoded.occurred_at == when
    assert decoded.schema_version == 1
    assert decoded.payload == {**row, "cause": "clock"}
    EligibilityChanged.model_validate(decoded.payload)
    # byte for byte what the pydantic model writes for the same fields
    model = eligibility_event(row, cause="clock").model_copy(
        update={"event_id": encoded.event_id, "occurred_at": when}
    )
    assert encoded.value == model.to_bytes()
