"""Simulations in a process of their own, at the lowest CPU priority.

A simulation evaluates every subject (a million productions take a core for a fraction
of a second). Run in the service's process, its threads compete with live work for the
interpreter lock and the CPU, and registry changes answered meanwhile wait longer. In a
child process at ``SCHED_IDLE`` (``nice 19`` where there is none), it runs only on CPU
time nothing else wants, and no lock of the service's is ever held for it.

The child holds its own copy of the caches: each request carries the service's cache
and book states, but only those that changed since the child last received them (a bulk
run replaces them; a live registry change does not), so a simulation usually sends a
draft and a date. The child then does what ``handlers.simulation`` does in one snapshot
of its own connection. It starts with the first simulation and again after it dies (its
memory is that of a second subject cache); one simulation runs at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess

from opentelemetry import trace

from reelpolicy_common.db.pool import ConnectionLimits
from reelpolicy_policy import Policy
from reelpolicy_rules.adapters.cache import (
    InMemoryPolicyBook,
    PolarsSubjectCache,
    PolicyState,
    SubjectState,
)
from reelpolicy_rules.domain.outcome_frames import SimulationReport

log = logging.getLogger(__name__)
_tracer = trace.get_tracer("reelpolicy.rules")


@dataclass(frozen=True)
class WorkerConfig:
    """What the child needs to open its own database connection."""

    database_url: str
    limits: ConnectionLimits


@dataclass(frozen=True)
class SimulationRequest:
    draft: Policy
    today: date
    sample_size: int
    subjects: SubjectState | None
    """The service's cache state, or None if the child holds it already."""
    policies: PolicyState | None
    """The service's book state, or None if the child holds it already."""


@dataclass(frozen=True)
class Progress:
    """The child's step: ``snapshot`` (its transaction begins next) or ``planned``
    (evaluated and diffed; the report is being made)."""

    step: str


@dataclass(frozen=True)
class Failure:
    message: str
    infrastructure: bool
    """The database failed (the client may retry), not the simulation."""


class _ProcessGoneError(Exception):
    """The child died (killed, out of memory) or closed its pipe."""


Worker = Callable[[Connection, WorkerConfig], None]
"""The child's main function (``entrypoints.simulation_worker.serve``)."""


class SimulationProcess:
    """The service's side: starts the child, sends it requests, returns its reports."""

    def __init__(
        self,
        *,
        worker: Worker,
        config: WorkerConfig,
        cache: PolarsSubjectCache,
        book: InMemoryPolicyBook,
    ) -> None:
        self._worker = worker
        self._config = config
        self._cache, self._book = cache, book
        self._lock = asyncio.Lock()
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        # the states the child holds (compared by identity: a state is never changed)
        self._sent: tuple[SubjectState | None, PolicyState | None] = (None, None)
        self.on_progress: Callable[[str], None] | None = None
        """Called on the event loop with each :class:`Progress` step (tests time them)."""

    @property
    def pid(self) -> int | None:
        """The child's process id, while there is one."""
        return None if self._process is None else self._process.pid

    async def simulate(self, *, draft: Policy, today: date, sample_size: int) -> SimulationReport:
        async with self._lock:
            with _tracer.start_as_current_span("rules.simulate") as span:
                try:
                    message = await self._exchange(draft, today, sample_size, span)
                except _ProcessGoneError:
                    # a simulation writes nothing, so trying again in a new process is
                    # safe; a second death (e.g. out of memory again) is answered 503
                    log.warning("the simulation process stopped; starting another")
                    try:
                        message = await self._exchange(draft, today, sample_size, span)
                    except _ProcessGoneError as exc:
                        raise ConnectionError("the simulation process stopped") from exc
        if isinstance(message, Failure):
            if message.infrastructure:
                raise ConnectionError(message.message)
            raise RuntimeError(f"simulation failed: {message.message}")
        report: SimulationReport = message
        return report

    async def _exchange(
        self, draft: Policy, today: date, sample_size: int, span: trace.Span
    ) -> SimulationReport | Failure:
        connection = await self._started()
        # both states of one moment: no await between
        subjects, policies = self._cache.state, self._book.state
        sent_subjects, sent_policies = self._sent
        request = SimulationRequest(
            draft=draft,
            today=today,
            sample_size=sample_size,
            subjects=None if subjects is sent_subjects else subjects,
            policies=None if policies is sent_policies else policies,
        )
        self._sent = (None, None)  # unknown until the child has them
        try:
            # a state sent over is megabytes: pickled and written off the loop
            await asyncio.to_thread(connection.send, request)
            self._sent = (subjects, policies)
            while True:
                message = await asyncio.to_thread(connection.recv)
                if not isinstance(message, Progress):
                    answer: SimulationReport | Failure = message
                    return answer
                span.add_event(message.step)
                if self.on_progress is not None:
                    self.on_progress(message.step)
        except (EOFError, OSError) as exc:
            self._stopped(kill=True)  # dead or dying: no wait for it to exit
            raise _ProcessGoneError from exc
        except BaseException:
            # cancelled mid-exchange: its answer would reach the next request
            self._stopped(kill=True)
            raise

    async def _started(self) -> Connection:
        if self._process is not None and self._process.is_alive() and self._connection:
            return self._connection
        self._stopped()
        # spawn: nothing of this process's threads, sockets or pool is inherited
        spawn = get_context("spawn")
        ours, theirs = spawn.Pipe()
        process = spawn.Process(
            target=self._worker,
            args=(theirs, self._config),
            name="rules-simulation",
            daemon=True,
        )
        started = time.perf_counter()
        await asyncio.to_thread(process.start)
        theirs.close()
        self._process, self._connection = process, ours
        log.info(
            "simulation process %s started in %.1fs", process.pid, time.perf_counter() - started
        )
        return ours

    def _stopped(self, *, kill: bool = False) -> None:
        """Forget the child (after it died, or to stop it): it holds no state then."""
        self._sent = (None, None)
        process, connection = self._process, self._connection
        self._process = self._connection = None
        if process is not None and kill:
            process.kill()  # its end of the pipe closes: a read of ours ends
        if connection is not None:
            connection.close()
        if process is not None:
            process.join(timeout=5)  # it exits when its end of the pipe closes
            if process.is_alive():
                process.kill()
                process.join()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._stopped()
