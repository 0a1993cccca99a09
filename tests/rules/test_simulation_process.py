"""``POST /v1/simulate`` runs in a process of its own: it steps aside for live work, is
sent the caches only when a bulk run replaced them, reads what changed since in its own
snapshot, and one that dies is replaced."""

from __future__ import annotations

import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from rules_helpers import (
    RunningRules,
    enterprise_event,
    enterprise_policy,
    policy_event,
    produce,
    running_rules,
    uid,
)

from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EventType
from reelpolicy_rules.adapters.simulation_process import SimulationProcess, SimulationRequest
from reelpolicy_rules.entrypoints.simulation_worker import cpu_quota, simulation_cpus
from service_harness import eventually

pytestmark = pytest.mark.servers
CHANGED = EventType.eligibility_changed


@pytest.fixture
async def rules(fresh_database: str, bootstrap_servers: str) -> AsyncIterator[RunningRules]:
    async with running_rules(fresh_database, bootstrap_servers) as r:
        yield r


def simulator_of(rules: RunningRules) -> SimulationProcess:
    simulator = rules.rules.simulator
    assert isinstance(simulator, SimulationProcess)
    return simulator


def oom_score_adj(pid: int) -> int:
    return int(Path(f"/proc/{pid}/oom_score_adj").read_text())


async def simulate(rules: RunningRules, draft: dict[str, Any]) -> dict[str, Any]:
    answer = await rules.client.post("/v1/simulate", json=draft, timeout=120)
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    return body


async def test_the_simulation_process_steps_aside_for_the_service(
    rules: RunningRules,
) -> None:
    await simulate(rules, enterprise_policy(uid("draft")))
    pid = simulator_of(rules).pid
    assert pid is not None
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        assert len(simulation_cpus(cpus, cpu_quota())) < len(cpus)
    threads = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    assert len(threads) > 1  # its own and those polars and asyncio started
    for thread in threads:
        assert os.sched_getscheduler(thread) == os.SCHED_IDLE, thread
        assert os.sched_getaffinity(thread) == simulation_cpus(cpus, cpu_quota())
    # out of memory, the kernel kills it before the service
    assert oom_score_adj(pid) == 1000
    # the service itself is left as it was
    assert os.sched_getscheduler(0) == os.SCHED_OTHER
    assert sorted(os.sched_getaffinity(0)) == cpus
    assert oom_score_adj(os.getpid()) < 1000


@pytest.mark.parametrize(
    ("allowed", "quota", "expected"),
    [
        ([0, 1], None, {1}),
        ([0, 1, 2, 3, 4, 5, 6, 7], None, {1, 2, 3, 4, 5, 6, 7}),
        ([0, 1, 2, 3, 4, 5, 6, 7], 2.0, {7}),  # a 2-CPU limit: one for live work
        ([0, 1, 2, 3], 3.5, {2, 3}),
        ([0, 1, 2, 3], 0.5, {3}),  # less than one CPU: it runs, at the lowest priority
        ([5], None, {5}),
    ],
)
def test_the_simulation_process_leaves_one_cpu_it_could_use(
    allowed: list[int], quota: float | None, expected: set[int]
) -> None:
    assert simulation_cpus(allowed, quota) == expected


def test_a_cgroup_cpu_limit_is_read(tmp_path: Path) -> None:
    cpu_max = tmp_path / "cpu.max"
    cpu_max.write_text("200000 100000\n")
    assert cpu_quota(cpu_max) == 2.0
    cpu_max.write_text("max 100000\n")
    assert cpu_quota(cpu_max) is None
    assert cpu_quota(tmp_path / "absent") is None


async def test_the_caches_are_sent_once_and_live_changes_are_read_in_the_snapshot(
    rules: RunningRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    boot, seen = rules.bootstrap, rules.seen
    live = uid("live")
    await produce(boot, topics.POLICY, policy_event(enterprise_policy(live), 1))
    first = uid("e")
    await produce(boot, topics.REGISTRY, enterprise_event(first, 1))
    await eventually(lambda: seen.of(CHANGED, subject_id=first), timeout=30)
    draft = enterprise_policy(uid("draft"))
    assert (await simulate(rules, draft))["impact"]["eligible_total"] == 1

    simulator = simulator_of(rules)
    connection = simulator._connection
    assert connection is not None
    sent: list[SimulationRequest] = []
    send = connection.send

    def spy(request: SimulationRequest) -> None:
        sent.append(request)
        send(request)

    monkeypatch.setattr(connection, "send", spy)

    # a live registry change leaves the service's caches as they were: nothing is sent
    # again, and the simulation reads the change from its snapshot
    second = uid("e")
    await produce(boot, topics.REGISTRY, enterprise_event(second, 1))
    await eventually(lambda: seen.of(CHANGED, subject_id=second), timeout=30)
    assert (await simulate(rules, draft))["impact"]["eligible_total"] == 2
    assert (sent[-1].subjects, sent[-1].policies) == (None, None)

    # a policy's bulk run replaces them: the next simulation sends them
    other = uid("other")
    await produce(boot, topics.POLICY, policy_event(enterprise_policy(other), 1))
    await eventually(lambda: seen.of(EventType.policy_impact, policy_id=other), timeout=30)
    assert (await simulate(rules, draft))["impact"]["eligible_total"] == 2
    assert sent[-1].policies is not None
    assert other in sent[-1].policies.policies
    assert sent[-1].subjects is not None
    assert (await simulate(rules, draft))["impact"]["eligible_total"] == 2
    assert (sent[-1].subjects, sent[-1].policies) == (None, None)


async def test_a_simulation_process_that_dies_is_replaced(
    rules: RunningRules, monkeypatch: pytest.MonkeyPatch
) -> None:
    draft = enterprise_policy(uid("draft"))
    await simulate(rules, draft)
    simulator = simulator_of(rules)
    used = [simulator.pid]

    # killed between simulations: the next one starts another process
    os.kill(simulator.pid or 0, signal.SIGKILL)
    await simulate(rules, draft)
    assert simulator.pid not in used
    used.append(simulator.pid)

    kills = [0]  # how many simulations to kill, as they take their snapshot

    def kill(step: str) -> None:
        if step == "snapshot" and kills[0]:
            kills[0] -= 1
            os.kill(simulator.pid or 0, signal.SIGKILL)

    monkeypatch.setattr(simulator, "on_progress", kill)
    # killed in the middle of one: it runs again in another process
    kills[0] = 1
    await simulate(rules, draft)
    assert simulator.pid not in used
    used.append(simulator.pid)
    # killed there too: 503, which the client may retry
    kills[0] = 2
    answer = await rules.client.post("/v1/simulate", json=draft, timeout=120)
    assert answer.status_code == 503, answer.text
    assert answer.headers["Retry-After"]
    assert simulator.pid is None
    await simulate(rules, draft)
    assert simulator.pid not in used
