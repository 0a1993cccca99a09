"""The simulation process's main function (started by ``adapters.simulation_process``).

It steps aside for live work before anything else (see :func:`yield_to_live_work`),
opens one database connection of its own, then answers the requests on its pipe one by
one until the service closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Sequence
from multiprocessing.connection import Connection
from pathlib import Path

from reelpolicy_common.consumer.faults import is_infrastructure_error
from reelpolicy_common.db.pool import create_pool
from reelpolicy_rules.adapters.cache import InMemoryPolicyBook, PolarsSubjectCache
from reelpolicy_rules.adapters.postgres import RulesUnitOfWork
from reelpolicy_rules.adapters.simulation_process import (
    Failure,
    Progress,
    SimulationRequest,
    WorkerConfig,
)
from reelpolicy_rules.handlers.simulation import report, simulate_policy

CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def cpu_quota(cpu_max: Path = CPU_MAX) -> float | None:
    """The CPUs this process's cgroup may use per period (cgroup v2 ``cpu.max``, e.g. a
    container's CPU limit); None without a limit or a file saying so."""
    try:
        quota, period = cpu_max.read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def simulation_cpus(allowed: Sequence[int], quota: float | None) -> set[int]:
    """The CPUs of ``allowed`` the simulation process may run on: all it could use but
    one (a CPU limit of ``quota`` counts as that many), and at least one."""
    usable = len(allowed) if quota is None else min(len(allowed), max(1, int(quota)))
    return set(sorted(allowed)[-max(1, usable - 1) :])


def yield_to_live_work() -> None:
    """Run only on CPU time nothing else wants (``SCHED_IDLE``; ``nice 19`` where there is
    none), and leave one CPU to live work (:func:`simulation_cpus`).

    A CPU kept busy costs the service latency even at the lowest priority: on a
    virtual machine a busy virtual CPU waits for the host, on any its caches are
    another's, and under a CPU limit the simulation's time counts against the
    service's. Set for every thread already started (imports start some); those
    started later inherit it.
    """
    threads = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc") else [0]
    affinity = getattr(os, "sched_getaffinity", None)
    ours = simulation_cpus(sorted(affinity(0)), cpu_quota()) if affinity else set()
    sched_idle = getattr(os, "SCHED_IDLE", None)
    for thread in threads:
        with contextlib.suppress(OSError):  # a thread may have ended meanwhile
            if ours:
                os.sched_setaffinity(thread, ours)
            if sched_idle is not None:
                os.sched_setscheduler(thread, sched_idle, os.sched_param(0))
    if sched_idle is None:
        with contextlib.suppress(OSError):
            os.nice(19)
    # Out of memory (a container's limit counts the service and this process together),
    # the kernel kills this process first: the simulation is answered 503, the service
    # lives on.
    with contextlib.suppress(OSError):
        Path("/proc/self/oom_score_adj").write_text("1000")


def serve(connection: Connection, config: WorkerConfig) -> None:
    yield_to_live_work()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(connection, config))


async def _serve(connection: Connection, config: WorkerConfig) -> None:
    pool = await create_pool(config.database_url, min_size=1, max_size=1, limits=config.limits)
    cache, book = PolarsSubjectCache(), InMemoryPolicyBook()
    try:
        while True:
            try:
                request = await asyncio.to_thread(connection.recv)
            except (EOFError, OSError):
                return  # the service closed its end, or is gone
            assert isinstance(request, SimulationRequest)
            if request.subjects is not None:
                cache = PolarsSubjectCache(request.subjects)
            if request.policies is not None:
                book = InMemoryPolicyBook(request.policies)
            answer: object
            try:
                connection.send(Progress("snapshot"))
                plan = await simulate_policy(
                    uow=lambda: RulesUnitOfWork(pool),
                    cache=cache,
                    book=book,
                    draft=request.draft,
                    today=request.today,
                )
                connection.send(Progress("planned"))
                answer = await asyncio.to_thread(
                    report, plan, policy_id=request.draft.id, sample_size=request.sample_size
                )
            except Exception as exc:  # answered to the service, which logs it
                answer = Failure(repr(exc), infrastructure=is_infrastructure_error(exc))
            connection.send(answer)
    finally:
        await pool.close()
