"""The faults of a chaos run: planned from a seed, applied at their moments, printed.

:func:`plan` draws every fault (moment, target, duration, restart delay) from
``random.Random(seed)`` before the run starts, so a seed names one run:

- SIGKILL of each service at least 3 times (one of rules' right after the load posts
  a new version of a wide policy, one of registry's right after a burst of writes,
  while its relay publishes the backlog); the supervisor restarts it after the delay;
- at least 5 connection faults through the proxies in front of PostgreSQL and the
  broker: cut every connection, black-hole for 5-30 s, add latency;
- PostgreSQL down for 30-60 s, once per 150 s of load (at least once), each time
  right after the load posts a new version of a wide policy (so events are in
  flight): stopped as its clients see it (every connection reset, new ones refused,
  at the proxy) and frozen (SIGSTOP of the postmaster and its children: calls hang),
  alternately;
- the webhook receiver answering 500, then holding requests past notify's timeout
  (each with a new policy version posted, so alerts meet it), and one endpoint
  answering 410 Gone from some moment on; none of them while the database is frozen.

Every fault is printed as it happens, with its offset from the start of the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from load import GONE_PATH, Load
from stack import Platform

from reelpolicy_devstack.services import SERVICES

Kind = Literal[
    "kill",
    "kill-during-policy-change",
    "kill-after-burst",
    "cut",
    "blackhole",
    "latency",
    "postgres-down",
    "postgres-freeze",
    "receiver-500",
    "receiver-timeout",
    "receiver-410",
]
LEAD_IN = 8.0
"""Seconds of clean load before the first fault."""
TAIL = 5.0
"""Every fault is over this many seconds before the load stops."""


@dataclass(frozen=True)
class Fault:
    at: float
    kind: Kind
    target: str = ""
    seconds: float = 0.0
    """How long the fault lasts; for a kill, how long until the restart."""
    latency: float = 0.0

    def describe(self) -> str:
        if self.kind.startswith("kill"):
            return f"{self.kind} {self.target} (restart after {self.seconds:.1f}s)"
        if self.kind == "latency":
            return f"latency {self.latency * 1000:.0f}ms on {self.target} for {self.seconds:.0f}s"
        if self.seconds:
            return f"{self.kind} {self.target} for {self.seconds:.0f}s".replace("  ", " ")
        return f"{self.kind} {self.target}".strip()


def plan(rng: random.Random, *, seconds: float) -> list[Fault]:
    """The faults of a run whose load lasts ``seconds``, in time order."""
    start, end = LEAD_IN, max(LEAD_IN + 60.0, seconds - TAIL)

    def moment(lasting: float = 0.0, lo: float = 0.0, hi: float = 1.0) -> float:
        first = start + (end - start) * lo
        last = max(first, min(end - lasting, start + (end - start) * hi))
        return rng.uniform(first, last)

    faults: list[Fault] = []
    frozen: list[tuple[float, float]] = []
    outages = max(1, round(seconds / 150))
    for n in range(outages):
        lasting = rng.uniform(30.0, 60.0)
        at = moment(lasting, n / outages, (n + 1) / outages - lasting / (end - start))
        outage: Kind = ("postgres-down", "postgres-freeze")[n % 2]
        faults.append(Fault(at, outage, "", seconds=lasting))
        frozen.append((at, at + lasting))

    def while_database_runs(
        lasting: float, lo: float = 0.0, hi: float = 1.0, *, before: float = 0.0
    ) -> float:
        """A moment in [lo, hi] of the run whose fault neither overlaps an outage nor
        comes less than ``before`` seconds ahead of one; any moment if there is none."""
        for _ in range(1000):
            at = moment(lasting, lo, hi)
            if all(at + lasting < begin - before or at > over for begin, over in frozen):
                return at
        return at

    kills = max(3, round(seconds / 100))
    for service in SERVICES:
        for n in range(kills):
            kind: Kind = "kill"
            if n == 0 and service == "rules":
                kind = "kill-during-policy-change"
            elif n == 0 and service == "registry":
                kind = "kill-after-burst"
            # A service killed shortly before an outage would not be consuming when it
            # begins: it cannot start without the database, and rejoining its consumer
            # group waits out the dead member's session.
            at = while_database_runs(0.0, before=40.0)
            faults.append(Fault(at, kind, service, seconds=rng.uniform(1.0, 5.0)))

    proxies = ["postgres", "broker"]
    for n in range(max(5, round(seconds / 40))):
        target = proxies[n % 2]
        kind = ("cut", "blackhole", "latency")[rng.randrange(3) if n >= 3 else n]
        # The database's proxy faults keep clear of its outages: healing one would end both.
        place = while_database_runs if target == "postgres" else moment
        if kind == "cut":
            faults.append(Fault(place(0.0), "cut", target))
        elif kind == "blackhole":
            lasting = rng.uniform(5.0, 30.0)
            faults.append(Fault(place(lasting), "blackhole", target, seconds=lasting))
        else:
            lasting = rng.uniform(10.0, 30.0)
            delay = rng.uniform(0.05, 0.4)
            faults.append(Fault(place(lasting), "latency", target, lasting, latency=delay))

    # With the database down notify sends nothing: a receiver fault then would go unseen.
    error_for, hold_for = rng.uniform(10.0, 30.0), rng.uniform(10.0, 20.0)
    receiver_faults = [
        Fault(while_database_runs(error_for, 0.0, 0.5), "receiver-500", "", seconds=error_for),
        Fault(while_database_runs(hold_for, 0.5, 1.0), "receiver-timeout", "", seconds=hold_for),
        Fault(while_database_runs(0.0, 0.3, 0.7), "receiver-410", GONE_PATH),
    ]
    return sorted(faults + receiver_faults, key=lambda f: f.at)


@dataclass
class FaultInjector:
    platform: Platform
    load: Load
    started: float
    say: Callable[[str], None]

    def offset(self) -> float:
        return time.monotonic() - self.started

    def _print(self, text: str) -> None:
        self.say(f"[{self.offset():7.1f}s] {text}")

    async def run(self, faults: list[Fault]) -> None:
        running: set[asyncio.Task[None]] = set()
        try:
            for fault in faults:
                await asyncio.sleep(max(0.0, self.started + fault.at - time.monotonic()))
                task = asyncio.create_task(self._apply(fault))
                running.add(task)
                task.add_done_callback(running.discard)
            if running:
                await asyncio.gather(*running)
        finally:
            for task in running:
                task.cancel()

    async def _apply(self, fault: Fault) -> None:
        platform, receiver = self.platform, self.platform.receiver
        assert receiver is not None
        if fault.kind == "kill-during-policy-change":
            policy_id = await self.load.policy_change(widest=True)
            self._print(f"load posted a new version of {policy_id}")
            await asyncio.sleep(0.5)
        elif fault.kind in ("postgres-down", "postgres-freeze"):
            # Under load: rules is working through a bulk change, notify through its alerts.
            policy_id = await self.load.policy_change(widest=True)
            self._print(f"load posted a new version of {policy_id}")
            await asyncio.sleep(0.3)
        elif fault.kind == "kill-after-burst":
            with_timeout = asyncio.wait_for(self.load.burst(), timeout=30)
            with contextlib.suppress(TimeoutError):
                await with_timeout
            self._print("load wrote a burst of registry changes")
        self._print(fault.describe())
        if fault.kind.startswith("kill"):
            platform.kill(fault.target, restart_after=fault.seconds)
        elif fault.kind in ("cut", "blackhole", "latency"):
            proxy = platform.pg_proxy if fault.target == "postgres" else platform.broker_proxy
            assert proxy is not None
            if fault.kind == "cut":
                proxy.cut()
                return
            if fault.kind == "blackhole":
                proxy.blackhole()
                await asyncio.sleep(fault.seconds)
                proxy.heal()
                if fault.target == "postgres" and platform.postgres_down:
                    platform.stop_postgres()  # an outage that began meanwhile goes on
            else:
                proxy.delay(fault.latency)
                await asyncio.sleep(fault.seconds)
                proxy.delay(0.0)
            self._print(f"{fault.kind} on {fault.target} over")
        elif fault.kind == "postgres-down":
            platform.stop_postgres()
            await asyncio.sleep(fault.seconds)
            platform.start_postgres()
            self._print("postgres back up")
        elif fault.kind == "postgres-freeze":
            platform.freeze_postgres()
            await asyncio.sleep(fault.seconds)
            platform.thaw_postgres()
            self._print("postgres thawed")
        elif fault.kind == "receiver-410":
            receiver.make_gone(fault.target)
        else:
            receiver.set_mode("error" if fault.kind == "receiver-500" else "timeout")
            policy_id = await self.load.policy_change()  # alerts to fail
            self._print(f"load posted a new version of {policy_id}")
            await asyncio.sleep(fault.seconds)
            receiver.set_mode("ok")
            self._print("receiver answers 200 again")
