"""Versioned event contracts: the envelope and the payload of every event type."""

from reelpolicy_common.events.envelope import Envelope, EventType, decode_envelope
from reelpolicy_common.events.payloads import (
    ApiKeyChanged,
    EligibilityChanged,
    EnterpriseChanged,
    PolicyImpact,
    PolicyPublished,
    PolicyRevoked,
    ProductionChanged,
)

__all__ = [
    "ApiKeyChanged",
    "EligibilityChanged",
    "EnterpriseChanged",
    "Envelope",
    "EventType",
    "PolicyImpact",
    "PolicyPublished",
    "PolicyRevoked",
    "ProductionChanged",
    "decode_envelope",
]
