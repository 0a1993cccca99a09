"""``POST /v1/simulate`` stalls no live work: registry changes flow while simulations loop
over a large projection, and their eligibility events arrive while a simulation is in
flight.

"In flight" is a window no lock can hide, as the simulation process reports its steps:
it opens when the simulation's transaction begins (one that took the exclusive
projection lock would hold it from then on) and closes when its diff is done (such a
simulation still holds the lock). The test needs one registry change produced *and*
answered inside one window: ordering of observed events, no timed threshold.
"""

from __future__ import annotations

import asyncio
import io
import time

import asyncpg
import polars as pl
import pytest
from aiokafka import AIOKafkaProducer
from rules_helpers import (
    enterprise_event,
    enterprise_policy,
    policy_event,
    produce,
    production_policy,
    running_rules,
    uid,
)

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EventType
from reelpolicy_rules.adapters.simulation_process import SimulationProcess
from service_harness import eventually, migrate_service

pytestmark = pytest.mark.servers
PRODUCTIONS = 1_000_000
SIMULATIONS = 10  # windows offered to the registry changes before the test gives up


async def seed_projection(dsn: str, productions: int) -> None:
    """``productions`` productions of ``productions // 10`` enterprises, by COPY. The
    enterprises are outside Shanghai, so the enterprise policy below holds none of them
    (its bulk run writes nothing)."""
    owners = max(1, productions // 10)
    ents = pl.DataFrame({"enterprise_id": [f"seed-e{i}" for i in range(owners)]}).select(
        "enterprise_id",
        pl.lit(1).alias("version"),
        pl.lit(
            '{"name": "E", "credit_code": "999999999999999999", "region_code": "410102",'
            ' "employees": 20, "kind": "production_company"}'
        ).alias("attributes"),
    )
    budgets = pl.int_range(productions, eager=True) * 7919 % 1_500_000
    prods = pl.DataFrame(
        {
            "production_id": [f"seed-p{i}" for i in range(productions)],
            "enterprise_id": [f"seed-e{i % owners}" for i in range(productions)],
            "budget": budgets,
        }
    ).select(
        "production_id",
        "enterprise_id",
        pl.lit(1).alias("version"),
        pl.format(
            '{{"enterprise_id": "{}", "title": "P", "region_code": "310110", "budget_cny": {}}}',
            "enterprise_id",
            "budget",
        ).alias("attributes"),
    )
    conn = await asyncpg.connect(dsn)
    try:
        for table, frame in (("enterprises", ents), ("productions", prods)):
            buffer = io.BytesIO()
            frame.write_csv(buffer)
            buffer.seek(0)
            await conn.copy_to_table(
                table, source=buffer, format="csv", header=True, columns=frame.columns
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()


class Windows:
    """When each simulation's snapshot began and its diff ended (loop time), as the
    simulation process reports its steps."""

    def __init__(self) -> None:
        self.opened: list[float] = []
        self.closed: list[float] = []

    def step(self, name: str) -> None:
        now = asyncio.get_running_loop().time()
        (self.opened if name == "snapshot" else self.closed).append(now)


async def test_registry_changes_are_answered_while_a_simulation_is_in_flight(
    fresh_database: str, bootstrap_servers: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_up = time.perf_counter()
    await migrate_service(fresh_database, "reelpolicy_rules.migrations", "rules")
    await seed_projection(fresh_database, PRODUCTIONS)
    async with running_rules(fresh_database, bootstrap_servers) as rules:
        live = uid("live")
        await produce(bootstrap_servers, topics.POLICY, policy_event(enterprise_policy(live), 1))
        await eventually(
            lambda: rules.seen.of(EventType.policy_impact, policy_id=live), timeout=120
        )
        print(
            f"set-up (seed {PRODUCTIONS:,} productions, start, load): "
            f"{time.perf_counter() - set_up:.1f} s"
        )

        loop = asyncio.get_running_loop()
        windows = Windows()
        simulator = rules.rules.simulator
        assert isinstance(simulator, SimulationProcess)
        monkeypatch.setattr(simulator, "on_progress", windows.step)

        draft = production_policy(uid("draft"))
        answers: list[int] = []

        async def simulate_in_a_loop() -> None:
            for _ in range(SIMULATIONS):
                answer = await rules.client.post("/v1/simulate", json=draft, timeout=600)
                assert answer.status_code == 200, answer.text
                answers.append(answer.json()["impact"]["eligible_total"])

        produced: dict[str, float] = {}  # cause (event id) -> when it was produced

        async def change_registry(producer: AIOKafkaProducer) -> None:
            seen_windows = 0
            while len(answers) < SIMULATIONS:
                if len(windows.opened) > seen_windows:  # a new simulation is evaluating
                    seen_windows = len(windows.opened)
                    change = enterprise_event(uid("e"), 1)
                    produced[str(change.event_id)] = loop.time()
                    await producer.send_and_wait(
                        topics.REGISTRY, change.to_bytes(), key=change.key.encode()
                    )
                await asyncio.sleep(0.01)

        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers, linger_ms=0)
        await producer.start()
        try:
            await asyncio.gather(simulate_in_a_loop(), change_registry(producer))
        finally:
            await producer.stop()
        await eventually(
            lambda: all(rules.seen.of(EventType.eligibility_changed, cause=c) for c in produced),
            timeout=60,
        )
        arrived = {
            e.payload["cause"]: t
            for e, t in zip(rules.seen.events, rules.seen.arrived, strict=True)
            if e.type is EventType.eligibility_changed and e.payload.get("cause") in produced
        }
        inside = [
            cause
            for cause, sent in produced.items()
            for start, end in zip(windows.opened, windows.closed, strict=True)
            if start <= sent and arrived[cause] <= end
        ]
        spans = [f"{s:.2f}-{e:.2f}" for s, e in zip(windows.opened, windows.closed, strict=True)]
        changes = {c: (f"{produced[c]:.2f}", f"{arrived[c]:.2f}") for c in produced}
        print(f"simulations {spans}; changes (produced, answered) {sorted(changes.values())}")
        assert inside, (
            "no registry change was answered while a simulation was evaluating:"
            f" simulations {spans}, changes (produced, answered) {changes}"
        )
        assert len(set(answers)) == 1  # the changes touch no production: one answer
