"""The registry batch path against one-event-at-a-time, on the real PostgreSQL.

A batch is applied set-wise (a fixed number of queries per round); these tests check
it reaches exactly what applying the same events one by one, each in its own
transaction, reaches: results, history and the events queued, including a fund that
runs out part-way through a round and a deleted enterprise giving its draw back.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import date
from typing import Any

import pytest
from rules_helpers import (
    RulesDatabase,
    enterprise_event,
    enterprise_policy,
    production_event,
    production_policy,
)

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope, EventType
from reelpolicy_devstack.servers import EmbeddedPostgres
from reelpolicy_rules.handlers.registry_events import (
    handle_registry_batch,
    handle_registry_event,
)

pytestmark = pytest.mark.servers
TODAY = date(2026, 3, 1)
CONSUMER = "rules.registry"


def fund_policy(pid: str, budget: int) -> dict[str, Any]:
    """A production policy granting 100,000 from a fund of ``budget``."""
    return {**production_policy(pid), "constraints": {"fund": {"id": "f1", "budget_cny": budget}}}


class Rules(RulesDatabase):
    async def state(self) -> dict[str, Any]:
        """Results, history and queued events, less ids and times."""
        results = await self.rows(
            "SELECT subject_id, policy_id, enterprise_id, status, amount_cny,"
            " missing_fields, explanation FROM results ORDER BY subject_id, policy_id"
        )
        history = await self.rows(
            "SELECT subject_id, policy_id, previous_status, status, previous_amount_cny,"
            " amount_cny, cause FROM result_history ORDER BY id"
        )
        values = await self.rows(
            f"SELECT key, value FROM outbox WHERE topic = '{topics.ELIGIBILITY}' ORDER BY seq"
        )
        events = [(r["key"], json.loads(r["value"])["payload"]) for r in values]
        return {"results": results, "history": history, "events": events}


async def _rules(postgres: EmbeddedPostgres, docs: Sequence[dict[str, Any]]) -> Rules:
    rules = await Rules.create(postgres, max_size=2)
    async with rules.uow() as work:
        for doc in docs:
            await work.projection.store_policy(doc["id"], 1, {**doc, "version": 1})
        await work.commit()
    return rules


@pytest.fixture
async def pair(embedded_postgres: EmbeddedPostgres) -> AsyncIterator[tuple[Rules, Rules]]:
    """Two rules databases with the same policies: one for batches, one event by event."""
    docs = [enterprise_policy("ent"), production_policy("prod"), fund_policy("fund", 250_000)]
    batch, single = [await _rules(embedded_postgres, docs) for _ in range(2)]
    yield batch, single
    await batch.pool.close()
    await single.pool.close()


def deleted(eid: str, version: int) -> Envelope:
    env = enterprise_event(eid, version)
    return Envelope(
        type=EventType.enterprise_deleted,
        producer="test",
        key=eid,
        payload={**env.payload, "deleted": True},
    )


async def _apply_both(pair: tuple[Rules, Rules], events: Sequence[Envelope]) -> None:
    batch, single = pair
    changed = await handle_registry_batch(
        uow=batch.uow, book=batch.book, envelopes=events, consumer=CONSUMER, today=TODAY
    )
    one_by_one = 0
    for e in events:
        one_by_one += await handle_registry_event(
            uow=single.uow, book=single.book, envelope=e, consumer=CONSUMER, today=TODAY
        )
    assert changed == one_by_one


async def test_a_batch_reaches_what_events_one_by_one_reach(pair: tuple[Rules, Rules]) -> None:
    e = [f"e{i}" for i in range(5)]
    first = [enterprise_event(eid, 1) for eid in e]
    # round 1: one production per enterprise, four of them drawing 100k on a 250k fund
    productions = [production_event(f"p{i}", eid, 1) for i, eid in enumerate(e[:4])]
    await _apply_both(pair, first)
    await _apply_both(pair, productions)
    batch_state = await pair[0].state()
    grants = sorted(r["amount_cny"] for r in batch_state["results"] if r["policy_id"] == "fund")
    assert grants == [0, 50_000, 100_000, 100_000]  # the fund ran out part-way
    assert batch_state == await pair[1].state()

    # a round with a deletion giving its draw back, a duplicate, a stale version and a
    # lost qualification; a second round with e4's production (after e4's own update)
    # and e0's second event. Listed in round order: a batch keeps each enterprise's
    # order, not the order across enterprises (Kafka orders only within a key).
    mixed = [
        deleted("e0", 2),
        productions[1],  # redelivered: nothing
        production_event("p2", "e2", 1, budget=10),  # not newer than the stored version
        enterprise_event("e4", 2, employees=50),
        production_event("p3", "e3", 2, budget=100),  # p3 no longer qualifies
        production_event("p4", "e4", 1),
        enterprise_event("e0", 3),
    ]
    await _apply_both(pair, mixed)
    batch_state = await pair[0].state()
    assert batch_state == await pair[1].state()
    fund = {
        r["subject_id"]: r["amount_cny"] for r in batch_state["results"] if r["policy_id"] == "fund"
    }
    # e0's deletion gave p0's draw back and p4 took it; e0 came back (and p0 with it)
    # after the fund was spent; p3 no longer qualifies
    assert fund == {"p0": 0, "p1": 100_000, "p2": 50_000, "p4": 100_000}
    causes = {h["cause"] for h in batch_state["history"]}
    assert {str(mixed[0].event_id), str(mixed[5].event_id)} <= causes


async def test_replaying_a_batch_changes_nothing(pair: tuple[Rules, Rules]) -> None:
    rules = pair[0]
    events = [enterprise_event("e1", 1), production_event("p1", "e1", 1)]
    first = await handle_registry_batch(
        uow=rules.uow, book=rules.book, envelopes=events, consumer=CONSUMER, today=TODAY
    )
    before = await rules.state()
    again = await handle_registry_batch(
        uow=rules.uow, book=rules.book, envelopes=events, consumer=CONSUMER, today=TODAY
    )
    assert first == 3  # the ent, prod and fund results
    assert again == 0
    assert await rules.state() == before
