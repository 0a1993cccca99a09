"""The simulation process's main function (started by ``adapters.simulation_process``).

It steps aside for live work before anything else (see :func:`yield_to_live_work`),
opens one database connection of its own, then answers the requests on its pipe one by
one until the service closes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from multiprocessing.connection import Connection

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


def yield_to_live_work() -> None:
    """Run only on CPU time nothing else wants (``SCHED_IDLE``; ``nice 19`` where there is
    none), and on every CPU but one (where there are two or more).

    A CPU kept busy costs the service latency even at the lowest priority (on a
    virtual machine, a busy virtual CPU waits for the host; on any, its caches are
    another's), so one CPU is left to live work. Set for every thread already started
    (imports start some); those started later inherit it.
    """
    threads = [int(t) for t in os.listdir("/proc/self/task")] if os.path.isdir("/proc") else [0]
    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    ours = set(cpus[1:]) if len(cpus) > 1 else set(cpus)
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
                cache = PolarsSubjectCache.holding(request.subjects)
            if request.policies is not None:
                book = InMemoryPolicyBook.holding(request.policies)
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
