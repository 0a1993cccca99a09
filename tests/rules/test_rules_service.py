"""The rules service at its boundary: real PostgreSQL and broker, the app's lifespan."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
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
from reelpolicy_contracts.events import EventType
from service_harness import add_api_key, eventually

pytestmark = pytest.mark.servers
CHANGED, IMPACT = EventType.eligibility_changed, EventType.policy_impact


@pytest.fixture
async def rules(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningRules]:
    async with running_rules(fresh_database, bootstrap_servers, clock_poll_seconds=0.1) as r:
        yield r


async def outbox_count(rules: RunningRules) -> int:
    return int(await rules.fetchval("SELECT count(*) FROM outbox"))


async def test_events_in_eligibility_out(rules: RunningRules) -> None:
    seen, boot = rules.seen, rules.bootstrap
    p1, p2, ent, prod = uid("te"), uid("tp"), uid("e"), uid("p")
    doc1, doc2 = enterprise_policy(p1), production_policy(p2)
    await produce(boot, topics.POLICY, policy_event(doc1, 1), policy_event(doc2, 1))
    await eventually(lambda: len(seen.of(IMPACT, policy_id=p2)) == 1, timeout=30)

    e1 = enterprise_event(ent, 1)
    await produce(boot, topics.REGISTRY, e1, production_event(prod, ent, 1))
    await eventually(lambda: len(seen.of(CHANGED, enterprise_id=ent)) == 2, timeout=60)
    first = seen.of(CHANGED, subject_id=ent)[0].payload
    assert (first["previous_status"], first["status"], first["amount_cny"]) == (
        "ineligible",
        "eligible",
        100000,
    )
    assert first["cause"] == str(e1.event_id)
    assert first["policy_version"] == 1
    assert first["explanation"]["criteria"]["result"] == "pass"

    # the same event again emits nothing; a later change on the same key still flows
    await produce(boot, topics.REGISTRY, e1, production_event(prod, ent, 2, budget=100))
    await eventually(lambda: len(seen.of(CHANGED, subject_id=prod)) == 2, timeout=30)
    assert len(seen.of(CHANGED, subject_id=ent)) == 1
    lost = seen.of(CHANGED, subject_id=prod)[1].payload
    assert (lost["previous_status"], lost["status"]) == ("eligible", "ineligible")

    # an edit that changes nobody's result: the impact summary only
    edit = policy_event(enterprise_policy(p1, title="Edited"), 2)
    await produce(boot, topics.POLICY, edit)
    await eventually(lambda: seen.of(IMPACT, policy_id=p1, policy_version=2), timeout=30)
    impact = seen.of(IMPACT, policy_id=p1, policy_version=2)[0].payload
    assert impact["newly_eligible"] == impact["no_longer_eligible"] == 0
    assert impact["eligible_total"] == 1
    await asyncio.sleep(1)
    assert not seen.of(CHANGED, cause=str(edit.event_id))

    # GET and history
    got = (await rules.client.get("/v1/eligibility", params={"enterprise_id": ent})).json()
    assert [(i["subject_id"], i["policy_id"], i["status"]) for i in got["items"]] == [
        (ent, p1, "eligible")
    ]
    assert got["items"][0]["policy_version"] == 2
    full = await rules.client.get(
        "/v1/eligibility", params={"enterprise_id": ent, "include_ineligible": "true"}
    )
    assert {(i["policy_id"], i["status"]) for i in full.json()["items"]} >= {(p2, "ineligible")}
    history = (await rules.client.get(f"/v1/eligibility/{prod}/{p2}/history")).json()["items"]
    assert [h["status"] for h in history] == ["eligible", "ineligible"]

    # company isolation: another enterprise's key sees 404
    other = await add_api_key(rules.dsn, role="company", enterprise_id=uid("e"))
    mine = await add_api_key(rules.dsn, role="company", enterprise_id=ent)
    for k, code in ((other, 404), (mine, 200)):
        h = {"Authorization": f"Bearer {k}"}
        r = await rules.client.get("/v1/eligibility", params={"enterprise_id": ent}, headers=h)
        assert r.status_code == code
        r = await rules.client.get(f"/v1/eligibility/{prod}/{p2}/history", headers=h)
        assert r.status_code == code
    h = {"Authorization": f"Bearer {mine}"}
    assert (await rules.client.post("/v1/simulate", json=doc1, headers=h)).status_code == 403
    # giving neither id: a company key gets its own enterprise's results, an operator 400
    own = await rules.client.get("/v1/eligibility", headers=h)
    assert own.status_code == 200, own.text
    assert own.json() == got
    assert (await rules.client.get("/v1/eligibility")).status_code == 400

    # simulate: impact of a draft, nothing written or emitted
    before = await outbox_count(rules)
    sim = await rules.client.post("/v1/simulate", json=enterprise_policy(p1, min_employees=50))
    assert sim.status_code == 200, sim.text
    assert sim.json()["impact"]["no_longer_eligible"] == 1
    assert sim.json()["sample"][0]["subject_id"] == ent
    assert await outbox_count(rules) == before

    # revocation: no longer eligible
    rev = revoke_event(p1, 2)
    await produce(boot, topics.POLICY, rev)
    await eventually(lambda: seen.of(CHANGED, cause=str(rev.event_id)), timeout=30)
    gone = seen.of(CHANGED, cause=str(rev.event_id))[0].payload
    assert (gone["subject_id"], gone["previous_status"], gone["status"]) == (
        ent,
        "eligible",
        "ineligible",
    )


async def test_clock_ends_a_policy(rules: RunningRules) -> None:
    seen, boot = rules.seen, rules.bootstrap
    pid, ent = uid("tc"), uid("e")
    await produce(boot, topics.POLICY, policy_event(enterprise_policy(pid, to="2026-03-02"), 1))
    await eventually(lambda: seen.of(IMPACT, policy_id=pid), timeout=30)
    await produce(boot, topics.REGISTRY, enterprise_event(ent, 1))
    await eventually(lambda: seen.of(CHANGED, subject_id=ent, status="eligible"), timeout=30)

    rules.clock.now += timedelta(days=1)  # 2026-03-02: still in force
    await asyncio.sleep(0.5)
    assert not seen.of(CHANGED, subject_id=ent, status="ineligible")
    rules.clock.now += timedelta(days=1)  # 2026-03-03: effective.to has passed
    await eventually(lambda: seen.of(CHANGED, subject_id=ent, status="ineligible"), timeout=15)
    ended = seen.of(CHANGED, subject_id=ent, status="ineligible")[0].payload
    assert ended["cause"] == "clock"
    assert ended["previous_status"] == "eligible"
