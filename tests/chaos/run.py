"""The chaos run: ``python tests/chaos/run.py --seed S --minutes M`` (``make chaos``).

It starts the platform as ``make up`` does (:mod:`stack`), waits until it agrees with
the oracle, then drives a steady load (:mod:`load`) for M minutes while injecting the
faults planned from seed S (:mod:`faults`). After the last fault everything is healed
and the load stops; the oracle (:mod:`oracle`, which does not use the event path) is
asked again and again until it reports agreement or the convergence timeout passes.
The measures are printed one per line as ``label: number``; the exit status is 0 only
when nothing was lost, nothing repeated, nothing dead-lettered or quarantined, and the
platform converged in time. Everything started is stopped at the end (also on failure
or Ctrl-C); the logs stay in the directory printed first.
"""

from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # tests/ holds tcp_fault_proxy; pytest puts it on the path itself
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import argparse
import asyncio
import random
import secrets
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import TextIO

import asyncpg
from aiokafka.errors import KafkaError
from faults import FaultInjector, plan
from load import Load
from oracle import ChaosReport, ChaosSources, measure
from stack import Platform

BASELINE_TIMEOUT = 240.0
"""How long the freshly started platform may take to agree with the oracle."""
POLL_SECONDS = 3.0


@dataclass
class ChaosResult:
    seed: int
    log_dir: Path
    changes_sent: int
    report: ChaosReport
    seconds_to_converge: float
    converge_timeout: float

    def lines(self) -> list[str]:
        r = self.report
        measures: list[tuple[str, int | float]] = [
            ("seed", self.seed),
            ("changes sent", self.changes_sent),
            ("eligibility expected", r.eligibility_expected),
            ("eligibility in rules", r.eligibility_in_rules),
            ("eligibility events lost", r.eligibility_events_lost),
            ("alerts expected", r.alerts_expected),
            ("alerts delivered", r.alerts_delivered),
            ("duplicate alerts", r.duplicate_alerts),
            ("dlq records", r.dlq_records),
            ("quarantined outbox rows", r.quarantined_outbox_rows),
            ("seconds to converge", round(self.seconds_to_converge, 1)),
        ]
        return [f"{label}: {value}" for label, value in measures]

    def failures(self) -> list[str]:
        r = self.report
        checks = {
            "eligibility events lost": r.eligibility_events_lost == 0,
            "duplicate alerts": r.duplicate_alerts == 0,
            "dlq records": r.dlq_records == 0,
            "quarantined outbox rows": r.quarantined_outbox_rows == 0,
            "eligibility in rules != expected": r.eligibility_in_rules == r.eligibility_expected,
            "alerts delivered != expected": r.alerts_delivered == r.alerts_expected,
            "not converged in time": r.converged
            and self.seconds_to_converge <= self.converge_timeout,
        }
        return [name for name, passed in checks.items() if not passed]


def sources_of(platform: Platform) -> ChaosSources:
    assert platform.receiver is not None
    assert platform.mail is not None
    assert platform.broker is not None
    dsns = platform.direct_dsns
    return ChaosSources(
        registry_dsn=dsns["registry"],
        ingest_dsn=dsns["ingest"],
        rules_dsn=dsns["rules"],
        notify_dsn=dsns["notify"],
        bootstrap_servers=platform.broker.bootstrap_servers,
        webhooks=tuple(platform.receiver.snapshot()),
        mail_dir=platform.mail.folder,
        gone_paths=frozenset(platform.receiver.gone_paths),
    )


async def converge(platform: Platform, *, timeout: float) -> tuple[ChaosReport, float]:
    """Ask the oracle until it agrees or ``timeout`` passes: its last report and the
    seconds it took. A source it cannot reach yet counts as not agreeing yet."""
    started = time.monotonic()
    report: ChaosReport | None = None
    while True:
        try:
            report = await measure(sources=sources_of(platform))
        except (OSError, asyncpg.PostgresError, KafkaError, TimeoutError):
            if time.monotonic() - started >= timeout:
                raise  # a source still unreachable when the time is up
        took = time.monotonic() - started
        if report is not None and (report.converged or took >= timeout):
            return report, took
        await asyncio.sleep(min(POLL_SECONDS, max(0.0, timeout - took)))


async def _drive(
    platform: Platform,
    *,
    seed: int,
    seconds: float,
    converge_timeout: float,
    note: Callable[[str], None],
    load_log: TextIO,
) -> ChaosResult:
    assert platform.receiver is not None
    supervisor = asyncio.create_task(platform.supervise())
    load = Load(
        urls=platform.urls,
        operator_key=platform.operator_key,
        receiver_base_url=platform.receiver.base_url,
        rng=random.Random(seed + 1),
        log=load_log,
    )
    try:
        await load.prepare()
        baseline, took = await converge(platform, timeout=BASELINE_TIMEOUT)
        state = "agrees with the oracle" if baseline.converged else "does NOT agree with the oracle"
        note(
            f"platform up: {baseline.eligibility_expected} eligibility results, "
            f"{baseline.alerts_expected} alerts; {state} after {took:.0f}s"
        )
        await load.subscribe()
        faults = plan(random.Random(seed), seconds=seconds)
        note(f"{len(faults)} faults planned over {seconds:.0f}s of load (seed {seed})")
        started = time.monotonic()
        stop = asyncio.Event()
        running_load = asyncio.create_task(load.run(stop))
        try:
            await FaultInjector(platform, load, started, note).run(faults)
            await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
        finally:
            stop.set()
            await running_load
        platform.heal()
        platform.receiver.set_mode("ok")
        note(f"[{time.monotonic() - started:7.1f}s] load stopped, every fault healed")
        report, took = await converge(platform, timeout=converge_timeout)
        return ChaosResult(
            seed=seed,
            log_dir=platform.log_dir,
            changes_sent=load.changes_sent,
            report=report,
            seconds_to_converge=took,
            converge_timeout=converge_timeout,
        )
    finally:
        note("load outcomes: " + ", ".join(f"{k} x{v}" for k, v in sorted(load.outcomes.items())))
        await load.close()
        supervisor.cancel()


def chaos_run(
    *,
    seed: int,
    minutes: float,
    converge_timeout: float = 60.0,
    log_dir: Path | None = None,
    say: Callable[[str], None] = print,
) -> ChaosResult:
    """One chaos run; prints its timeline and measures through ``say``."""
    log_dir = log_dir or Path(tempfile.mkdtemp(prefix=f"reelpolicy-chaos-{seed}-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    say(f"chaos run: seed {seed}, {minutes:g} minutes; logs in {log_dir}")
    platform = Platform(log_dir)
    with (
        open(log_dir / "faults.log", "a", encoding="utf-8") as timeline,
        open(log_dir / "load.log", "a", encoding="utf-8") as load_log,
    ):

        def note(line: str) -> None:
            say(line)
            timeline.write(line + "\n")
            timeline.flush()

        try:
            platform.start()
            result = asyncio.run(
                _drive(
                    platform,
                    seed=seed,
                    seconds=minutes * 60,
                    converge_timeout=converge_timeout,
                    note=note,
                    load_log=load_log,
                )
            )
        finally:
            platform.stop()
        for line in result.lines():
            note(line)
        failures = result.failures()
        for line in result.report.mismatches if failures else ():
            note(f"  {line}")
        note("chaos run passed" if not failures else f"chaos run FAILED: {', '.join(failures)}")
        say(f"logs: {log_dir}")
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="default: a random one, printed")
    parser.add_argument("--minutes", type=float, default=5.0, help="how long the load runs")
    parser.add_argument("--converge-timeout", type=float, default=60.0)
    parser.add_argument("--log-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(1_000_000)

    def interrupt(_signum: int, _frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    result = chaos_run(
        seed=seed,
        minutes=args.minutes,
        converge_timeout=args.converge_timeout,
        log_dir=args.log_dir,
        say=lambda line: print(line, flush=True),
    )
    return 1 if result.failures() else 0


if __name__ == "__main__":
    sys.exit(main())
