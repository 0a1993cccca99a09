"""A policy change committed in steps (``BULK_COMMIT_ROWS``), on the real PostgreSQL.

Committed a few changes at a time it must reach what one transaction reaches (results,
history, events), keep the projection locked between its commits, and, when it dies
between two commits, be finished by the event's redelivery: every change emitted once
and the impact summary once.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from datetime import date
from typing import Any, ClassVar

import asyncpg
import pytest
from rules_helpers import (
    RulesDatabase,
    enterprise_event,
    enterprise_policy,
    policy_event,
    production_event,
)

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import Envelope
from reelpolicy_devstack.servers import EmbeddedPostgres
from reelpolicy_rules.adapters.cache import PolarsSubjectCache
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.adapters.projection import PROJECTION_LOCK
from reelpolicy_rules.handlers.policy_events import commit_steps, handle_policy_event
from reelpolicy_rules.handlers.registry_events import handle_registry_event

pytestmark = pytest.mark.servers
TODAY = date(2026, 3, 1)
CONSUMER = "rules.policy"
SUBJECTS = 7  # enterprises that qualify, one change each


def test_commit_steps_cover_every_row_once_and_at_least_one_step() -> None:
    assert commit_steps(5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert commit_steps(5, 0) == [(0, 5)]
    assert commit_steps(5, 5) == [(0, 5)]
    assert commit_steps(4, 2) == [(0, 2), (2, 4)]
    assert commit_steps(0, 3) == [(0, 0)]
    assert commit_steps(0, 0) == [(0, 0)]


class Rules(RulesDatabase):
    def __init__(self, pool: asyncpg.Pool) -> None:
        super().__init__(pool)
        self.cache = PolarsSubjectCache()

    async def apply(self, envelope: Envelope, *, commit_rows: int, trace_limit: int = 1000) -> int:
        return await handle_policy_event(
            uow=self.uow,
            cache=self.cache,
            book=self.book,
            envelope=envelope,
            consumer=CONSUMER,
            today=TODAY,
            trace_limit=trace_limit,
            commit_rows=commit_rows,
        )

    async def state(self) -> dict[str, Any]:
        """Results, history (as a set) and queued events (payloads, sorted), less ids."""
        results = [
            tuple(r.values())
            for r in await self.rows(
                "SELECT subject_id, policy_id, status, amount_cny, explanation FROM results"
                " ORDER BY subject_id, policy_id"
            )
        ]
        history = sorted(
            tuple(r.values())
            for r in await self.rows(
                "SELECT subject_id, policy_id, previous_status, status, amount_cny, cause"
                " FROM result_history"
            )
        )
        changes = f"SELECT key, value FROM outbox WHERE topic = '{topics.ELIGIBILITY}'"
        values = [json.loads(r["value"]) for r in await self.rows(changes)]
        events = sorted(
            (v["type"], v["key"], json.dumps(v["payload"], sort_keys=True)) for v in values
        )
        return {"results": results, "history": history, "events": events}


async def _rules(postgres: EmbeddedPostgres) -> Rules:
    rules = await Rules.create(postgres, max_size=3)
    for i in range(SUBJECTS):
        for event in (enterprise_event(f"e{i}", 1), production_event(f"p{i}", f"e{i}", 1)):
            await handle_registry_event(
                uow=rules.uow,
                book=rules.book,
                envelope=event,
                consumer="rules.registry",
                today=TODAY,
            )
    return rules


@pytest.fixture
async def pair(embedded_postgres: EmbeddedPostgres) -> AsyncIterator[tuple[Rules, Rules]]:
    """Two rules databases with the same subjects: one for steps, one transaction."""
    stepped, whole = [await _rules(embedded_postgres) for _ in range(2)]
    yield stepped, whole
    await stepped.pool.close()
    await whole.pool.close()


# full traces (7 changes <= 1000), compact ones (7 > 5, though each step holds 2)
@pytest.mark.parametrize("trace_limit", [1000, 5])
async def test_steps_reach_what_one_transaction_reaches(
    pair: tuple[Rules, Rules], trace_limit: int
) -> None:
    stepped, whole = pair
    doc = enterprise_policy(f"pol-{uuid.uuid4().hex[:6]}")
    for version, employees in ((1, 10), (2, 30), (3, 10)):  # all, none, all again
        event = policy_event(
            {
                **doc,
                "criteria": {
                    "all": [{"field": "enterprise.employees", "op": "gte", "value": employees}]
                },
            },
            version,
        )
        assert await stepped.apply(event, commit_rows=2, trace_limit=trace_limit) == SUBJECTS
        assert await whole.apply(event, commit_rows=0, trace_limit=trace_limit) == SUBJECTS
        assert await stepped.apply(event, commit_rows=2) == 0  # redelivered: nothing
        assert await stepped.state() == await whole.state()
    compact = {r[4].get("mode") == "bulk" for r in (await stepped.state())["results"]}
    assert compact == {trace_limit == 5}
    types = [t for t, _, _ in (await stepped.state())["events"]]
    assert types.count("policy.impact") == 3
    assert types.count("eligibility.changed") == 3 * SUBJECTS


class DiesBetweenCommits(RulesUnitOfWork):
    """Checks the projection is locked after the first commit, then dies there."""

    locked_between: ClassVar[list[bool]] = []

    async def begin(self) -> None:
        async with self._pool.acquire() as other:
            free = await other.fetchval(
                "SELECT pg_try_advisory_lock_shared($1, 0)", PROJECTION_LOCK
            )
            if free:
                await other.execute("SELECT pg_advisory_unlock_shared($1, 0)", PROJECTION_LOCK)
        self.locked_between.append(not free)
        raise ConnectionError("rules died between two commits")


async def test_a_run_that_dies_between_commits_is_finished_by_the_redelivery(
    pair: tuple[Rules, Rules],
) -> None:
    stepped, whole = pair
    event = policy_event(enterprise_policy(f"pol-{uuid.uuid4().hex[:6]}"), 1)
    with pytest.raises(ConnectionError):
        await handle_policy_event(
            uow=lambda: DiesBetweenCommits(stepped.pool),
            cache=stepped.cache,
            book=stepped.book,
            envelope=event,
            consumer=CONSUMER,
            today=TODAY,
            trace_limit=1000,
            commit_rows=3,
        )
    assert DiesBetweenCommits.locked_between == [True]  # a subject update would have waited
    partial = await stepped.state()
    assert len(partial["results"]) == 3
    assert len(partial["history"]) == 3
    async with stepped.pool.acquire() as conn:  # the lock went with the unit of work
        assert await conn.fetchval("SELECT pg_try_advisory_lock($1, 0)", PROJECTION_LOCK)
        await conn.execute("SELECT pg_advisory_unlock($1, 0)", PROJECTION_LOCK)

    assert await stepped.apply(event, commit_rows=3) == SUBJECTS - 3  # the rest
    assert await whole.apply(event, commit_rows=0) == SUBJECTS
    assert await stepped.apply(event, commit_rows=3) == 0
    assert await stepped.state() == await whole.state()  # each change once, impact once
