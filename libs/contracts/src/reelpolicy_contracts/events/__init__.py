"""Versioned event contracts: the envelope and the payload of every event type."""

from reelpolicy_contracts.events.envelope import Envelope, EventType, decode_envelope
from reelpolicy_contracts.events.payloads import (
    ApiKeyChanged,
    EligibilityChanged,
    EligibilityState,
    EnterpriseChanged,
    PolicyImpact,
    PolicyPublished,
    PolicyRevoked,
    ProductionChanged,
    SnapshotCompleted,
)
from reelpolicy_contracts.events.snapshots import new_snapshot_id, snapshot_headers, snapshot_marker

__all__ = [
    "ApiKeyChanged",
    "EligibilityChanged",
    "EligibilityState",
    "EnterpriseChanged",
    "Envelope",
    "EventType",
    "PolicyImpact",
    "PolicyPublished",
    "PolicyRevoked",
    "ProductionChanged",
    "SnapshotCompleted",
    "decode_envelope",
    "new_snapshot_id",
    "snapshot_headers",
    "snapshot_marker",
]
