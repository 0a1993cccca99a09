"""Wires the rules service: settings -> runtime -> caches, the unit of work, the publisher."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime

import asyncpg

from reelpolicy_common.runtime import ServiceRuntime
from reelpolicy_contracts import catalog, topics
from reelpolicy_rules.adapters.cache import InMemoryPolicyBook, PolarsSubjectCache
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.config import Settings
from reelpolicy_rules.domain.calendar import local_day
from reelpolicy_rules.ports import Clock, Simulator


def system_clock() -> datetime:
    return datetime.now(UTC)


@dataclass
class Rules:
    """What the entrypoints need: settings, runtime, caches, the clock, a uow factory, the
    simulator."""

    settings: Settings
    runtime: ServiceRuntime
    clock: Clock = system_clock
    cache: PolarsSubjectCache = field(default_factory=PolarsSubjectCache)
    book: InMemoryPolicyBook = field(default_factory=InMemoryPolicyBook)
    simulator: Simulator | None = None
    """Set by ``main.create_app`` (its process runs an entrypoint's function)."""

    def uow(self) -> RulesUnitOfWork:
        return RulesUnitOfWork(self.runtime.pool)

    def today(self) -> date:
        return local_day(self.clock(), self.settings.timezone)

    async def load(self, _pool: asyncpg.Pool | None = None) -> None:
        """Reload the projection into the caches (on start, before consuming)."""
        async with self.uow() as work:
            await work.projection.lock_all()
            await self.book.refresh(work.projection)
            await self.cache.refresh(work.projection)


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None) -> Rules:
    """The runtime, caches and publisher; ``main.create_app`` adds the consumers and the
    scheduler."""
    settings = settings or Settings()
    runtime = ServiceRuntime(settings)
    rules = Rules(settings, runtime, clock or system_clock)
    runtime.on_started(rules.load)
    runtime.broker.publisher(
        topics.ELIGIBILITY,
        title="eligibility events",
        description="eligibility.changed keyed by enterprise id; policy.impact keyed by policy id.",
        schema=catalog.topic_schema(topics.ELIGIBILITY),
    )
    return rules
