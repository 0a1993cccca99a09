"""Kafka topic names and configs: the only place they are spelled.

Every event is keyed by its aggregate id so per-aggregate order holds: policy events
by policy id, registry events by enterprise id (an enterprise and its productions stay
in order), eligibility events by enterprise id (a company's results stay in order).

Event topics keep records for a stated time (``cleanup.policy=delete``): nothing may
depend on their oldest records still being there. What a rebuild needs instead is a
*snapshot*: ``reelpolicy-registry republish`` / ``reelpolicy-ingest republish`` emit
every record's current state again, each record tagged with :data:`SNAPSHOT_HEADER`,
and a ``snapshot.completed`` marker (snapshot id, record count) on :data:`SNAPSHOTS`,
keyed by the source topic. That topic is compacted, so the latest marker of each
source topic is kept for good (``reelpolicy-rules rebuild`` reads them).
"""

from __future__ import annotations

POLICY = "reelpolicy.policy.v1"
REGISTRY = "reelpolicy.registry.v1"
ELIGIBILITY = "reelpolicy.eligibility.v1"
SNAPSHOTS = "reelpolicy.snapshots.v1"
"""``snapshot.completed`` markers, keyed by the topic the snapshot was written to."""
ELIGIBILITY_STATE = "reelpolicy.eligibility.state.v1"
"""The current result of every (subject, policy), compacted: ``eligibility.state``
records keyed ``<subject_type>:<subject_id>:<policy_id>`` (:func:`state_key`), a
tombstone (null value) when a result is withdrawn. Read from the beginning, last value
per key wins: the current state without replaying history. Written by rules in the
transaction of each ``eligibility.changed`` event; no service consumes it."""

SNAPSHOT_HEADER = "reelpolicy-snapshot"
"""Kafka header of a republished record: the id of the snapshot it belongs to."""

MAIN_TOPICS: tuple[str, ...] = (POLICY, REGISTRY, ELIGIBILITY)

DEFAULT_PARTITIONS: dict[str, int] = {
    POLICY: 3,
    REGISTRY: 12,
    ELIGIBILITY: 12,
    ELIGIBILITY_STATE: 12,
}
"""Partition counts the services expect (compose's topic job and ``make up`` use these)."""

_DAY_MS = 24 * 3600 * 1000
EVENT_RETENTION_MS = 7 * _DAY_MS
"""How long event topics keep records (Apache Kafka's default, stated)."""
DEAD_LETTER_RETENTION_MS = 30 * _DAY_MS
"""Dead letters wait longer: someone has to look at them and replay them."""
TOMBSTONE_RETENTION_MS = _DAY_MS
"""How long a compacted topic keeps a tombstone (``delete.retention.ms``, Apache Kafka's
default, stated): a consumer bootstrapping from the state topic must read to its end
within that time, or it may miss a withdrawal (and keep a result that is gone)."""


def state_key(subject_type: str, subject_id: str, policy_id: str) -> str:
    """The key of a (subject, policy) on :data:`ELIGIBILITY_STATE`:
    ``production:<subject_id>:<policy_id>`` (subject ids hold no colon)."""
    return f"{subject_type}:{subject_id}:{policy_id}"


def dead_letter(topic: str) -> str:
    """The dead-letter topic of ``topic``: the original message plus the error."""
    return f"{topic}.dlq"


ALL_TOPICS: tuple[str, ...] = (
    MAIN_TOPICS + tuple(dead_letter(t) for t in MAIN_TOPICS) + (SNAPSHOTS, ELIGIBILITY_STATE)
)


def partitions(topic: str) -> int:
    """How many partitions ``topic`` is created with (dead-letter topics get one)."""
    return DEFAULT_PARTITIONS.get(topic, 1)


def config(topic: str) -> dict[str, str]:
    """The topic configs ``topic`` is created with (compose's topic job sets the same)."""
    if topic == SNAPSHOTS:  # the latest marker per key, kept for good
        return {"cleanup.policy": "compact", "retention.ms": "-1"}
    if topic == ELIGIBILITY_STATE:  # the latest result per key, kept for good
        return {
            "cleanup.policy": "compact",
            "retention.ms": "-1",
            "delete.retention.ms": str(TOMBSTONE_RETENTION_MS),
        }
    if topic.endswith(".dlq"):
        return {"cleanup.policy": "delete", "retention.ms": str(DEAD_LETTER_RETENTION_MS)}
    return {"cleanup.policy": "delete", "retention.ms": str(EVENT_RETENTION_MS)}
