"""Background tasks under supervision, and what ``/healthz`` learns from them.

A :class:`SupervisedTask` runs one long-lived coroutine (the outbox relay, notify's
delivery worker, the rules scheduler...). When it raises, the exception is logged
with its traceback, counted (``reelpolicy_task_restarts_total``), and the task is
started again after a doubling wait (capped). A task that returns was meant to run
for the life of the process, so it stays down and the health check names it.

Tasks show progress with :func:`heartbeat` from their loops, saying when they will
beat next; a task whose beat is overdue (by more than a grace period) is reported as
stuck. The last beat is the gauge ``reelpolicy_task_heartbeat_timestamp_seconds``, the
promised interval ``reelpolicy_task_heartbeat_interval_seconds`` (the alert rules compare
the two as ``/healthz`` does).

FastStream runs each subscriber's consume loop in tasks of its own (and restarts one
that raised); :class:`ConsumerWatch` counts each subscriber's live tasks and names
a subscriber that has fewer than it started with.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Literal

from faststream.kafka import KafkaBroker

from reelpolicy_common.metrics import (
    TASK_HEARTBEAT,
    TASK_HEARTBEAT_INTERVAL,
    TASK_RESTARTS,
    TASK_UP,
)

log = logging.getLogger(__name__)

TaskFactory = Callable[[], Coroutine[Any, Any, None]]
TaskState = Literal["idle", "running", "restarting", "returned", "died", "stopped"]

_current: ContextVar[SupervisedTask | None] = ContextVar("reelpolicy_task", default=None)


def heartbeat(*, within: float) -> None:
    """Tell the supervisor the calling task made progress and will beat again within
    ``within`` seconds; nothing outside a supervised task (e.g. in a unit test)."""
    task = _current.get()
    if task is not None:
        task.beat(within=within)


@dataclass(frozen=True)
class RestartPolicy:
    initial_seconds: float = 0.5
    max_seconds: float = 30.0
    grace_seconds: float = 60.0  # slack beyond a task's promised beat interval

    def delay(self, failures: int) -> float:
        """The wait before restart number ``failures`` of a run of quick failures."""
        return float(min(self.max_seconds, self.initial_seconds * 2 ** max(failures - 1, 0)))


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


class SupervisedTask:
    """One background coroutine, restarted when it raises."""

    def __init__(self, name: str, factory: TaskFactory, *, policy: RestartPolicy) -> None:
        self.name = name
        self._factory = factory
        self._policy = policy
        self.state: TaskState = "idle"
        self.restarts = 0
        self.last_error: str | None = None
        self.last_beat: float | None = None
        self.beat_within: float | None = None  # None: the task never promised a beat
        self._restart_at = 0.0
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def beat(self, *, within: float | None) -> None:
        self.last_beat = time.time()
        self.beat_within = within
        TASK_HEARTBEAT.labels(self.name).set(self.last_beat)
        if within is not None:
            TASK_HEARTBEAT_INTERVAL.labels(self.name).set(within)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._supervise(), name=self.name)
        return self._task

    async def stop(self, *, grace_seconds: float | None = None) -> None:
        """Cancel the task (or, with ``grace_seconds``, first let it return by itself)."""
        self._stopping = True
        if self._task is None:
            return
        if grace_seconds is not None:
            done, _ = await asyncio.wait({self._task}, timeout=grace_seconds)
            if done:
                return
        self._task.cancel()
        await asyncio.wait({self._task})

    async def _supervise(self) -> None:
        _current.set(self)
        failures = 0
        try:
            while True:
                started = time.monotonic()
                self.state = "running"
                TASK_UP.labels(self.name).set(1)
                self.beat(within=self.beat_within)
                try:
                    await self._factory()
                except Exception as exc:
                    if self._stopping:
                        self.state = "stopped"
                        return
                    # a task that ran a while before failing starts the waits afresh
                    ran = time.monotonic() - started
                    failures = 1 if ran >= self._policy.max_seconds else failures + 1
                    delay = self._policy.delay(failures)
                    self.restarts += 1
                    self.last_error = _describe(exc)
                    self.state = "restarting"
                    self._restart_at = time.monotonic() + delay
                    TASK_UP.labels(self.name).set(0)
                    TASK_RESTARTS.labels(self.name).inc()
                    log.error(
                        "background task %s raised; restarting in %.1fs",
                        self.name,
                        delay,
                        exc_info=exc,
                    )
                    await asyncio.sleep(delay)
                    continue
                self.state = "stopped" if self._stopping else "returned"
                if not self._stopping:
                    log.error("background task %s returned; it is not restarted", self.name)
                return
        except BaseException as exc:
            if not self._stopping:
                self.state = "died"
                self.last_error = _describe(exc)
            raise
        finally:
            TASK_UP.labels(self.name).set(0)

    def problem(self) -> str | None:
        """Why this task is not doing its work, or None."""
        if self._stopping or self.state == "idle":
            return None
        if self.state == "returned":
            return "stopped: the task returned and is not restarted"
        if self.state == "died" or (self._task is not None and self._task.done()):
            return f"died: {self.last_error or 'cancelled'}"
        if self.state == "restarting":
            wait = max(self._restart_at - time.monotonic(), 0.0)
            return f"raised {self.restarts} time(s), restarting in {wait:.1f}s: {self.last_error}"
        if self.beat_within is not None and self.last_beat is not None:
            silent = time.time() - self.last_beat
            if silent > self.beat_within + self._policy.grace_seconds:
                return (
                    f"no heartbeat for {silent:.0f}s (it promised one within {self.beat_within:g}s)"
                )
        return None


def subscriber_name(subscriber: Any) -> str:
    """``consumer:<title>`` (the consumer runner titles subscribers ``<consumer>:<topics>``)."""
    config = getattr(getattr(subscriber, "specification", None), "config", None)
    title = getattr(config, "title_", None) or ",".join(getattr(subscriber, "topic_names", []))
    return f"consumer:{title}"


class ConsumerWatch:
    """Counts the live consume tasks of each FastStream subscriber against the count
    right after the broker started (FastStream replaces a task that raised by a new
    one; a task that returned, e.g. its consumer stopped, is not replaced)."""

    def __init__(self, broker: KafkaBroker) -> None:
        self._broker = broker
        self._expected: dict[str, int] = {}
        self._counted_failures: set[int] = set()

    def _tasks(self) -> dict[str, list[asyncio.Task[Any]]]:
        return {
            subscriber_name(sub): list(getattr(sub, "tasks", []))
            for sub in self._broker.subscribers
        }

    def started(self) -> None:
        """Remember how many consume tasks each subscriber runs (after broker.start())."""
        self._expected = {
            name: sum(not t.done() for t in tasks) for name, tasks in self._tasks().items()
        }
        self.observe()

    def observe(self) -> dict[str, str]:
        """Update the task metrics; returns the subscribers missing consume tasks."""
        problems: dict[str, str] = {}
        now = time.time()
        for name, tasks in self._tasks().items():
            expected = self._expected.get(name, 0)
            if not expected:
                continue
            live = sum(not t.done() for t in tasks)
            for task in tasks:
                failed = task.done() and not task.cancelled() and task.exception() is not None
                if failed and id(task) not in self._counted_failures:
                    self._counted_failures.add(id(task))
                    TASK_RESTARTS.labels(name).inc()
            TASK_UP.labels(name).set(1 if live >= expected else 0)
            if live >= expected:
                TASK_HEARTBEAT.labels(name).set(now)
                continue
            ended = [t for t in tasks if t.done()]
            why = ""
            if ended:
                last = ended[-1]
                error = None if last.cancelled() else last.exception()
                why = f" (last: {_describe(error) if error else 'returned or cancelled'})"
            problems[name] = f"{expected - live} of {expected} consume task(s) stopped{why}"
        return problems

    async def run(self, *, every_seconds: float) -> None:
        """Refresh the consumers' metrics now and then (health checks refresh them too)."""
        while True:
            self.observe()
            heartbeat(within=every_seconds)
            await asyncio.sleep(every_seconds)
