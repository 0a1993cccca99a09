"""Benchmark: registry update -> eligibility event latency with and without simulations.

    .venv/bin/python bench/simulate_concurrency.py [--productions 1000000] [--rate 50]
                                                   [--seconds 12] [--rounds 5]

Loads ``--productions`` synthetic productions into the rules projection (COPY), starts
``reelpolicy-rules serve`` and publishes ``zz-yellow-river``, waiting until its bulk
run's events are all relayed. Then ``--rounds`` times, two windows of ``--seconds``: it
produces ``production.upserted`` snapshots at ``--rate`` per second (each flips one
eligible production's ``zz-yellow-river`` result) and times each from its produce to its
eligibility event, first alone, then while ``POST /v1/simulate`` runs back to back with a
draft production policy evaluated over every production. It prints each window's median
(and p99), the simulations' median duration, both medians over all windows, and whether
they differ by more than the windows without simulations differ among themselves.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import polars as pl
import psutil
from aiokafka import AIOKafkaProducer

from reelpolicy_contracts import topics
from registry_latency import measure_direct
from support import (
    catalog_events,
    load_projection,
    operator_key,
    prepare_rules,
    running,
    servers,
    start_service,
    synthetic,
    wait_healthy,
)

POLICY = "zz-yellow-river"


def draft_document() -> dict[str, Any]:
    """``zz-yellow-river`` as a draft of another id with a different amount: a
    production policy every production is evaluated against."""
    (live,) = [e for e in catalog_events() if e.key == POLICY]
    doc = dict(live.payload["document"])
    doc["id"] = "draft-yellow-river"
    doc["benefits"] = [{**doc["benefits"][0], "max_amount_cny": 500_000}]
    return doc


async def publish_policy_and_settle(
    bootstrap: str, dsn: str, *, eligible: int, timeout: float = 600
) -> float:
    """Publish ``POLICY`` and wait until its bulk run has written the ``eligible``
    results (it commits them in steps) and every event is relayed; seconds taken."""
    (event,) = [e for e in catalog_events() if e.key == POLICY]
    t0 = time.perf_counter()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topics.POLICY, event.to_bytes(), key=event.key.encode())
    finally:
        await producer.stop()
    conn = await asyncpg.connect(dsn)
    try:
        while time.perf_counter() - t0 < timeout:
            done = await conn.fetchval(
                "SELECT count(*) FROM result_history WHERE policy_id = $1", POLICY
            )
            pending = await conn.fetchval("SELECT count(*) FROM outbox")
            if done >= eligible and not pending:
                return time.perf_counter() - t0
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
    raise TimeoutError(f"{POLICY}'s bulk run did not finish")


async def simulate_in_a_loop(port: int, key: str, stop: asyncio.Event) -> list[float]:
    """``POST /v1/simulate`` back to back until ``stop``; each one's duration."""
    durations: list[float] = []
    draft = draft_document()
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=600,
    ) as client:
        while not stop.is_set():
            t0 = time.perf_counter()
            answer = await client.post("/v1/simulate", json=draft)
            if answer.status_code != 200:
                raise RuntimeError(f"simulate answered {answer.status_code}: {answer.text}")
            durations.append(time.perf_counter() - t0)
    return durations


def verdict(alone: list[list[float]], busy: list[list[float]]) -> str:
    """Both medians over every window, and whether they differ by more than the windows
    without simulations differ among themselves (the noise)."""
    ms = [statistics.median(w) * 1000 for w in alone]
    without = statistics.median([x for w in alone for x in w]) * 1000
    with_ = statistics.median([x for w in busy for x in w]) * 1000
    noise = max(ms) - min(ms)
    within = abs(with_ - without) <= noise
    return (
        f"registry -> eligibility median: {without:.1f} ms without, {with_:.1f} ms with"
        f" simulations ({with_ - without:+.1f} ms); windows without simulations"
        f" {', '.join(f'{m:.1f}' for m in ms)} ms: noise {noise:.1f} ms;"
        f" {'within' if within else 'beyond'} noise"
    )


def memory(service_pid: int) -> str:
    """Resident and peak memory of the service and of its simulation process (Linux)."""

    def of(pid: int) -> str:
        status = dict(
            line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
        )
        rss, peak = (int(status[k].split()[0]) / 1024 / 1024 for k in ("VmRSS", "VmHWM"))
        return f"{rss:.2f} GiB (peak {peak:.2f})"

    children = psutil.Process(service_pid).children()
    (simulator,) = [c for c in children if "spawn_main" in " ".join(c.cmdline())]
    return f"memory: the service {of(service_pid)}, its simulation process {of(simulator.pid)}"


def summary(latencies: list[float]) -> str:
    lat = sorted(latencies)
    return (
        f"median {statistics.median(lat) * 1000:.1f} ms, p99 {lat[int(len(lat) * 0.99) - 1] * 1000:.1f}"
        f" ms, max {lat[-1] * 1000:.1f} ms ({len(lat):,} updates)"
    )


async def main_async(a: argparse.Namespace) -> int:
    with servers() as (pg, broker):
        dsn = await prepare_rules(pg, broker)
        t0 = time.perf_counter()
        ents, prods = synthetic(a.productions)
        await load_projection(dsn, ents, prods)
        print(
            f"projection: {prods.height:,} productions loaded in {time.perf_counter() - t0:.1f} s"
        )
        key = await operator_key(dsn)
        proc, port = start_service(dsn, broker.bootstrap_servers)
        async with running(proc):
            print(f"rules healthy after {await wait_healthy(port):.1f} s", flush=True)
            eligible = prods.filter(pl.col("attributes").str.contains("yellow_river_culture"))
            settled = await publish_policy_and_settle(
                broker.bootstrap_servers, dsn, eligible=eligible.height
            )
            print(
                f"{POLICY} published, {eligible.height:,} results written and relayed in"
                f" {settled:.1f} s",
                flush=True,
            )
            # eligible productions, each updated at most once a second: every update
            # flips its result (and each window uses its own)
            pairs = list(zip(eligible["production_id"], eligible["enterprise_id"], strict=True))
            per_window = a.rate * 2
            alone: list[list[float]] = []
            busy: list[list[float]] = []
            durations: list[float] = []
            for r in range(a.rounds):
                targets = pairs[per_window * 2 * r :][: per_window * 2]
                quiet, loaded = targets[:per_window], targets[per_window:]
                alone.append(
                    await measure_direct(broker.bootstrap_servers, quiet, a.rate, a.seconds)
                )
                print(f"round {r + 1}, without simulations: {summary(alone[-1])}", flush=True)
                stop = asyncio.Event()
                looping = asyncio.create_task(simulate_in_a_loop(port, key, stop))
                await asyncio.sleep(a.warmup)  # the first simulation is under way
                busy.append(
                    await measure_direct(broker.bootstrap_servers, loaded, a.rate, a.seconds)
                )
                stop.set()
                durations += await looping
                print(f"round {r + 1}, with simulations:    {summary(busy[-1])}", flush=True)
            print(
                f"simulations over {prods.height:,} productions: {len(durations)} run back to back,"
                f" median {statistics.median(durations):.2f} s"
                f" (min {min(durations):.2f}, max {max(durations):.2f}; the first starts the"
                " simulation process)"
            )
            print(verdict(alone, busy))
            print(memory(proc.pid))
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--productions", type=int, default=1_000_000)
    ap.add_argument("--rate", type=int, default=50, help="registry updates per second")
    ap.add_argument("--seconds", type=int, default=12, help="each window's length")
    ap.add_argument(
        "--rounds", type=int, default=5, help="windows without, then with simulations, each"
    )
    ap.add_argument(
        "--warmup", type=float, default=2.0, help="seconds simulations run before measuring"
    )
    return asyncio.run(main_async(ap.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
