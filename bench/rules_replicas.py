"""Benchmark: a policy change with 1, 2 and 3 rules processes in one consumer group.

    .venv/bin/python bench/rules_replicas.py [--productions 100000] [--runs 3]

Starts an embedded PostgreSQL and broker, loads the synthetic projection into the rules
database with COPY, then for 1, 2 and 3 processes: starts that many
``reelpolicy-rules serve`` on the one database (a fresh consumer group each time; each
process loads its own columnar cache), produces new versions of ``zz-yellow-river``
whose amount changes for every matching production (as ``bench/policy_change.py
--direct``), and times each from the produced policy event to the last
``eligibility.changed`` of that version. Prints, per process count, the events of every
run, the median seconds and the events per second of the median.

Read the figure for what it is. A policy change is recalculated by the one process that
holds the policy's partition (the policy topic is keyed by policy id), so more replicas
do not split one policy change: they split the registry partitions and distinct
policies. On 2 cores shared with PostgreSQL, the broker and this script, the figure is
about the correctness of the split (the same number of changes whatever the process
count, the change not slowed by idle replicas) more than about speed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import sys

from policy_change import DirectPublisher, one_run
from support import (
    running,
    seeded_rules,
    servers,
    start_service,
    wait_healthy,
)


async def main_async(a: argparse.Namespace) -> int:
    with servers() as (pg, broker):
        dsn, _, _ = await seeded_rules(pg, broker, a.productions)
        publish = DirectPublisher(broker.bootstrap_servers)
        version = 0
        summary: list[tuple[int, float, int]] = []
        for count in a.processes:
            async with contextlib.AsyncExitStack() as stack:
                ports = []
                for _ in range(count):
                    proc, port = start_service(
                        dsn, broker.bootstrap_servers, group=f"replicas{count}"
                    )
                    await stack.enter_async_context(running(proc))
                    ports.append(port)
                for port in ports:
                    await wait_healthy(port)
                await asyncio.sleep(8)  # consumer group join on the embedded broker
                times, events = [], []
                # the first version after start is a warm-up (as in policy_change.py)
                for i in range(a.runs + 1):
                    version += 1
                    amount = 350_000 if version % 2 == 0 else 300_000
                    _, secs, n = await one_run(
                        broker.bootstrap_servers, version, amount, a.quiet, publish
                    )
                    print(f"{count} process(es), v{version}: {n:,} events, last after {secs:.2f}s")
                    if i:
                        times.append(secs)
                        events.append(n)
                median = statistics.median(times)
                n = int(statistics.median(events))
                summary.append((count, median, n))
        print("processes  median s  events  events/s")
        for count, median, n in summary:
            print(f"{count:>9}  {median:>8.2f}  {n:>6,}  {n / median:>8,.0f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--productions", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--processes", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--quiet", type=float, default=3.0, help="seconds without events = done")
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
