"""The compacted state topic: a fresh consumer that reads ``reelpolicy.eligibility.state.v1``
alone (from the beginning, last value per key wins, a tombstone deletes its key) ends
with exactly the results ``GET /v1/eligibility`` answers, after registry and policy
events created, changed and withdrew results on both paths (per subject and bulk).

The embedded broker does not compact, so the consumer applies what compaction
guarantees eventually itself: only the last record of each key counts.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from rules_helpers import (
    RunningRules,
    enterprise_event,
    enterprise_policy,
    policy_event,
    produce,
    production_event,
    production_policy,
    revoke_event,
    running_rules,
    uid,
)

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EligibilityState, Envelope, EventType, decode_envelope
from service_harness import eventually

pytestmark = pytest.mark.servers
CHANGED, IMPACT = EventType.eligibility_changed, EventType.policy_impact
STATE = topics.ELIGIBILITY_STATE


@pytest.fixture
async def rules(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningRules]:
    async with running_rules(fresh_database, bootstrap_servers) as running:
        yield running


def deleted(event: Envelope) -> Envelope:
    """``event`` (an upsert) as the registry's (soft) delete of the same record."""
    kind = {
        EventType.enterprise_upserted: EventType.enterprise_deleted,
        EventType.production_upserted: EventType.production_deleted,
    }[event.type]
    return Envelope(
        type=kind, producer="test", key=event.key, payload={**event.payload, "deleted": True}
    )


async def bootstrap_from_state_topic(
    bootstrap_servers: str, *, subjects: set[str], records: int
) -> tuple[dict[str, EligibilityState], int]:
    """What a new consumer knows after reading the state topic from the beginning:
    key -> current result (last value per key; a tombstone deletes the key).

    The topic is shared by the session's tests, so only keys of ``subjects`` count; the
    read stops once ``records`` of them arrived (what this test's rules wrote), because
    the embedded broker's end offsets are not record offsets.
    """
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap_servers, fetch_max_wait_ms=10)
    await consumer.start()
    try:
        tps = [TopicPartition(STATE, p) for p in range(topics.partitions(STATE))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        state: dict[str, EligibilityState] = {}
        read = 0
        async with asyncio.timeout(60):
            while read < records:
                for batch in (await consumer.getmany(timeout_ms=200)).values():
                    for r in batch:
                        key = r.key.decode()
                        subject_type, subject_id, policy_id = key.split(":", 2)
                        if subject_id not in subjects:
                            continue
                        read += 1
                        headers = {k: v.decode() for k, v in r.headers}
                        assert headers["event-type"] == EventType.eligibility_state.value
                        if r.value is None:  # a tombstone: the result is withdrawn
                            state.pop(key, None)
                            continue
                        envelope = decode_envelope(r.value)
                        assert envelope.type is EventType.eligibility_state
                        assert envelope.key == key
                        value = EligibilityState.model_validate(envelope.payload)
                        assert (value.subject_type, value.subject_id, value.policy_id) == (
                            subject_type,
                            subject_id,
                            policy_id,
                        )
                        state[key] = value
        return state, read
    finally:
        await consumer.stop()


async def test_a_fresh_consumer_of_the_state_topic_finds_what_get_answers(
    rules: RunningRules,
) -> None:
    seen, boot = rules.seen, rules.bootstrap
    p_ent, p_prod, p_new = uid("se"), uid("sp"), uid("sn")
    ents = {name: uid(f"e{name}") for name in "abcd"}
    prods = {name: uid(f"p{name}") for name in "abcd"}
    subjects = set(ents.values()) | set(prods.values())

    def changes(**payload: Any) -> int:
        return sum(1 for e in seen.of(CHANGED, **payload) if e.payload["subject_id"] in subjects)

    # 1. policies first (nothing to evaluate yet), then subjects: the per-subject path
    await produce(boot, topics.POLICY, policy_event(enterprise_policy(p_ent), 1))
    await produce(boot, topics.POLICY, policy_event(production_policy(p_prod), 1))
    await eventually(lambda: seen.of(IMPACT, policy_id=p_prod), timeout=30)
    ent_a, ent_b = enterprise_event(ents["a"], 1), enterprise_event(ents["b"], 1, employees=None)
    ent_c, ent_d = enterprise_event(ents["c"], 1), enterprise_event(ents["d"], 1)
    prod_a = production_event(prods["a"], ents["a"], 1)
    prod_b = production_event(prods["b"], ents["b"], 1)
    prod_c = production_event(prods["c"], ents["c"], 1)
    prod_d = production_event(prods["d"], ents["d"], 1)
    await produce(boot, topics.REGISTRY, ent_a, ent_b, ent_c, ent_d, prod_a, prod_b, prod_c, prod_d)
    # a, c, d eligible and b unknown (no employees) for p_ent; every production eligible
    await eventually(lambda: changes() == 8, timeout=60)
    assert changes(status="unknown") == 1

    # 2. changes and withdrawals, per subject: a production falls below the budget
    # (ineligible), an enterprise loses its head count (unknown), a production and an
    # enterprise (with its production) are deleted
    await produce(
        boot,
        topics.REGISTRY,
        production_event(prods["a"], ents["a"], 2, budget=100),
        enterprise_event(ents["a"], 2, employees=None),
        deleted(production_event(prods["b"], ents["b"], 2)),
        deleted(enterprise_event(ents["c"], 2)),
    )
    await eventually(lambda: changes() == 8 + 5, timeout=60)

    # 3. the bulk path: a new version that drops d (and leaves a and b unknown), a new
    # policy (a and b unknown, d eligible), a revoked policy (d's production withdrawn)
    await produce(boot, topics.POLICY, policy_event(enterprise_policy(p_ent, min_employees=30), 2))
    await eventually(lambda: seen.of(IMPACT, policy_id=p_ent, policy_version=2), timeout=30)
    await produce(boot, topics.POLICY, policy_event(enterprise_policy(p_new), 1))
    await eventually(lambda: seen.of(IMPACT, policy_id=p_new), timeout=30)
    await produce(boot, topics.POLICY, policy_event(production_policy(p_prod), 2))
    await produce(boot, topics.POLICY, revoke_event(p_prod, 2))
    await eventually(lambda: changes(policy_id=p_prod, status="ineligible") == 4, timeout=30)
    assert changes() == 13 + 1 + 3 + 1

    # every change committed and published (state records included)
    unsent = "SELECT count(*) FROM outbox WHERE sent_at IS NULL"

    async def all_sent() -> bool:
        return bool(await rules.fetchval(unsent) == 0)

    await eventually(all_sent, timeout=30)
    assert await rules.fetchval(unsent) == 0
    written = int(await rules.fetchval("SELECT count(*) FROM outbox WHERE topic = $1", STATE))
    change_events = int(
        await rules.fetchval(
            "SELECT count(*) FROM outbox WHERE topic = $1 AND event_type = $2",
            topics.ELIGIBILITY,
            CHANGED.value,
        )
    )
    assert written == change_events, "one state record per eligibility.changed event"
    tombstones = await rules.fetchval(
        "SELECT count(*) FROM outbox WHERE topic = $1 AND value IS NULL", STATE
    )
    assert tombstones >= 6, tombstones

    state, read = await bootstrap_from_state_topic(boot, subjects=subjects, records=written)
    assert read == written

    # what GET /v1/eligibility answers for the same subjects
    answered: dict[str, dict[str, Any]] = {}
    for enterprise_id in ents.values():
        got = await rules.client.get("/v1/eligibility", params={"enterprise_id": enterprise_id})
        if got.status_code == 404:  # deleted with nothing left
            continue
        assert got.status_code == 200, got.text
        for item in got.json()["items"]:
            key = topics.state_key(item["subject_type"], item["subject_id"], item["policy_id"])
            assert key not in answered
            answered[key] = item

    assert set(state) == set(answered), (sorted(state), sorted(answered))
    assert answered, "the scenario leaves results to compare"
    compared_explanations = 0
    for key, item in answered.items():
        value = state[key]
        held = value.model_dump(mode="json")
        fields = (
            "subject_type",
            "subject_id",
            "enterprise_id",
            "policy_id",
            "status",
            "amount_cny",
            "missing_fields",
        )
        assert {f: held[f] for f in fields} == {f: item[f] for f in fields}, key
        # the version that last changed the result; GET shows the policy's current one
        assert value.policy_version <= item["policy_version"], key
        if value.explanation.get("mode") != "bulk":  # GET re-traces bulk summaries only
            assert value.explanation == item["explanation"], key
            compared_explanations += 1
    assert compared_explanations
    # what the scenario left: a and b unknown (no head count) for both enterprise
    # policies, d eligible for the new one only; c deleted; no production result
    assert {(s.subject_id, s.policy_id, s.status) for s in state.values()} == {
        (ents["a"], p_ent, "unknown"),
        (ents["b"], p_ent, "unknown"),
        (ents["a"], p_new, "unknown"),
        (ents["b"], p_new, "unknown"),
        (ents["d"], p_new, "eligible"),
    }

    # the change topic is as it was: only eligibility.changed and policy.impact on it
    assert {e.type for e in seen.events} <= {CHANGED, IMPACT}
