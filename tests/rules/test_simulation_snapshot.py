"""A simulation answers from one snapshot of the rules database, on the real PostgreSQL.

It sees what was committed before its snapshot (past the shared caches' cursors too),
nothing of a change committed while it runs (not half of it), never an uncommitted
policy version or subject a bulk run put in the shared book or cache, and leaves the
shared caches as they were.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from typing import Any

import pytest
from rules_helpers import RulesDatabase, production_policy

from reelpolicy_devstack.servers import EmbeddedPostgres
from reelpolicy_policy import parse_policy
from reelpolicy_rules.adapters.cache import PolarsSubjectCache
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.handlers.policy_recalculation import RecalculationPlan
from reelpolicy_rules.handlers.simulation import simulate_policy

pytestmark = pytest.mark.servers
TODAY = date(2026, 3, 1)
ENTERPRISE = {"name": "E", "credit_code": "9" * 18, "region_code": "310110", "employees": 20}


def production(pid: str, budget: int) -> tuple[str, str, int, bool, dict[str, Any]]:
    attributes = {
        "enterprise_id": "e1",
        "title": "P",
        "region_code": "310110",
        "budget_cny": budget,
    }
    return (pid, "e1", 1, False, attributes)


class Rules(RulesDatabase):
    cache: PolarsSubjectCache
    after_snapshot: Callable[[], Awaitable[None]] | None = None

    def uow(self) -> RulesUnitOfWork:
        """A unit of work that runs ``after_snapshot`` once its snapshot is taken."""
        rules = self

        class Hooked(RulesUnitOfWork):
            async def read_only_snapshot(self) -> None:
                await super().read_only_snapshot()
                if rules.after_snapshot is not None:
                    # the snapshot is taken by the transaction's first read
                    await self.conn.fetchval("SELECT 1 FROM productions LIMIT 1")
                    await rules.after_snapshot()

        return Hooked(self.pool)

    async def store(self, *productions: tuple[str, str, int, bool, dict[str, Any]]) -> None:
        """Write productions (and the enterprise) in one committed transaction."""
        async with RulesUnitOfWork(self.pool) as work:
            await work.projection.store_enterprises([("e1", 1, False, ENTERPRISE)])
            await work.projection.store_productions(list(productions))
            await work.commit()

    async def load(self) -> None:
        async with RulesUnitOfWork(self.pool) as work:
            await work.projection.lock_all()
            await self.book.refresh(work.projection)
            await self.cache.refresh(work.projection)

    async def simulate(self, draft: dict[str, Any]) -> RecalculationPlan:
        return await simulate_policy(
            uow=self.uow,
            cache=self.cache,
            book=self.book,
            draft=parse_policy({**draft, "version": 1}),
            today=TODAY,
        )


@pytest.fixture
async def rules(embedded_postgres: EmbeddedPostgres) -> AsyncIterator[Rules]:
    db = await Rules.create(embedded_postgres, max_size=4)
    db.cache = PolarsSubjectCache()
    try:
        yield db
    finally:
        await db.pool.close()


def eligible(plan: RecalculationPlan, policy_id: str) -> set[str]:
    rows = plan.current.filter(
        (plan.current["policy_id"] == policy_id) & (plan.current["status"] == "eligible")
    )
    return set(rows["subject_id"])


async def test_a_simulation_sees_its_snapshot_whole_and_leaves_the_caches_alone(
    rules: Rules,
) -> None:
    draft = production_policy("draft")  # Shanghai productions with a budget of 500,000+
    await rules.store(production("p1", 1_000_000))
    await rules.load()
    shared_seq, shared_frame = rules.cache.seq, rules.cache.frame("production")
    await rules.store(production("p2", 1_000_000))  # after the caches' cursor

    async def change_while_simulating() -> None:
        # one registry change, committed after the snapshot: p1 falls out, p3 comes in
        await rules.store(production("p1", 100_000), production("p3", 1_000_000))

    rules.after_snapshot = change_while_simulating
    during = await rules.simulate(draft)
    rules.after_snapshot = None
    assert eligible(during, "draft") == {"p1", "p2"}  # neither half of the change

    assert rules.cache.seq == shared_seq  # the shared cache was neither read into nor moved
    assert rules.cache.frame("production").equals(shared_frame)

    after = await rules.simulate(draft)
    assert eligible(after, "draft") == {"p2", "p3"}


async def test_a_policy_version_not_yet_committed_is_not_simulated(rules: Rules) -> None:
    stacked = {"stacking_group": {"id": "shanghai-total", "cap_cny": 10_000_000}}
    live = {**production_policy("live"), "constraints": stacked}
    draft = {**production_policy("draft"), "constraints": stacked}
    await rules.store(production("p1", 1_000_000))
    async with RulesUnitOfWork(rules.pool) as work:
        await work.projection.store_policy("live", 1, {**live, "version": 1})
        await work.commit()
    await rules.load()

    # a policy event's bulk run: version 2 stored and read into the shared book, not
    # committed yet while the simulation runs
    async with RulesUnitOfWork(rules.pool) as bulk:
        await bulk.hold_projection()
        await bulk.projection.store_policy("live", 2, {**live, "version": 2})
        await rules.book.refresh(bulk.projection)
        assert rules.book.versions["live"] == 2
        plan = await rules.simulate(draft)
    assert plan.policies["live"].version == 1
    assert eligible(plan, "live") == {"p1"}


async def test_subjects_not_yet_committed_are_not_simulated(rules: Rules) -> None:
    await rules.store(production("p1", 1_000_000))
    await rules.load()

    # a rebuild: subjects stored and read into the shared cache, not committed yet
    async with RulesUnitOfWork(rules.pool) as rebuild:
        await rebuild.projection.lock_all()
        await rebuild.projection.store_productions([production("p2", 1_000_000)])
        await rules.cache.refresh(rebuild.projection)
        plan = await rules.simulate(production_policy("draft"))
    assert eligible(plan, "draft") == {"p1"}
