"""Kafka topic names: the only place they are spelled.

Every event is keyed by its aggregate id so per-aggregate order holds: policy events
by policy id, registry events by enterprise id (an enterprise and its productions stay
in order), eligibility events by enterprise id (a company's results stay in order).
"""

from __future__ import annotations

POLICY = "reelpolicy.policy.v1"
REGISTRY = "reelpolicy.registry.v1"
ELIGIBILITY = "reelpolicy.eligibility.v1"

MAIN_TOPICS: tuple[str, ...] = (POLICY, REGISTRY, ELIGIBILITY)

DEFAULT_PARTITIONS: dict[str, int] = {POLICY: 3, REGISTRY: 12, ELIGIBILITY: 12}
"""Partition counts the services expect (compose's topic job and ``make up`` use these)."""


def dead_letter(topic: str) -> str:
    """The dead-letter topic of ``topic``: the original message plus the error."""
    return f"{topic}.dlq"


ALL_TOPICS: tuple[str, ...] = MAIN_TOPICS + tuple(dead_letter(t) for t in MAIN_TOPICS)


def partitions(topic: str) -> int:
    """How many partitions ``topic`` is created with (dead-letter topics get one)."""
    return DEFAULT_PARTITIONS.get(topic, 1)
