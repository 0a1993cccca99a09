"""Running the four services (and the portal) as separate processes, as ``make up`` and the
e2e test do."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import httpx

SERVICES: tuple[str, ...] = ("registry", "ingest", "rules", "notify")
DEFAULT_PORTS: dict[str, int] = {"registry": 8001, "ingest": 8002, "rules": 8003, "notify": 8004}
PORTAL = "portal"
"""The companies' web portal: no broker, only the services' HTTP APIs (started after them)."""
PORTAL_PORT = 8005


def command(service: str, *args: str) -> list[str]:
    """The console script of ``service`` (from this interpreter's environment)."""
    script = Path(sys.executable).with_name(f"reelpolicy-{service}")
    found = str(script) if script.exists() else shutil.which(f"reelpolicy-{service}")
    if found is None:
        raise FileNotFoundError(f"reelpolicy-{service} is not installed")
    return [found, *args]


class CommandError(RuntimeError):
    """A one-shot service command that failed; ``stderr`` holds what it said."""

    def __init__(self, message: str, *, returncode: int, stderr: str) -> None:
        super().__init__(message)
        self.returncode = returncode
        self.stderr = stderr


def run(service: str, *args: str, env: dict[str, str], check: bool = True) -> str:
    """Run a one-shot command of ``service`` and return its output."""
    done = subprocess.run(
        command(service, *args), env={**os.environ, **env}, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise CommandError(
            f"reelpolicy-{service} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}",
            returncode=done.returncode,
            stderr=done.stderr,
        )
    return done.stdout


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str]
    env: dict[str, str]
    restarts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _spawn(argv: list[str], *, env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as out:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            argv,
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches this command only; it stops the children
        )


@dataclass
class ServiceGroup:
    """The service processes started together; stopped together with SIGTERM.

    Once :meth:`stop` has begun, :meth:`restart` starts nothing: a supervisor in
    another thread cannot bring back a process that is being stopped.
    """

    processes: list[ServiceProcess] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def start(
        self,
        name: str,
        *,
        port: int,
        env: dict[str, str],
        log_dir: Path,
        argv: list[str] | None = None,
    ) -> ServiceProcess:
        """Start ``argv`` (default: ``reelpolicy-<name> serve``), logging to ``log_dir``."""
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}-{port}.log"
        argv = argv or command(name, "serve")
        env = {**env, "HTTP_PORT": str(port)}
        with self._lock:
            started = ServiceProcess(
                name, port, _spawn(argv, env=env, log_path=log_path), log_path, argv, env
            )
            self.processes.append(started)
        return started

    def restart(self, proc: ServiceProcess) -> bool:
        """Start ``proc`` again (appending to its log); False once stopping began."""
        with self._lock:
            if self.stopping.is_set():
                return False
            proc.restarts += 1
            with open(proc.log_path, "a") as log:
                log.write(f"\n--- reelpolicy-dev: restart {proc.restarts} of {proc.name} ---\n")
            proc.process = _spawn(proc.argv, env=proc.env, log_path=proc.log_path)
            return True

    def wait_healthy(self, *, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.processes)
        while pending:
            for proc in list(pending):
                if proc.process.poll() is not None:
                    tail = proc.log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{proc.name} exited ({proc.process.returncode}):\n{tail}")
                try:
                    if httpx.get(f"{proc.url}/healthz", timeout=1).status_code == 200:
                        pending.remove(proc)
                except httpx.HTTPError:
                    pass
            if pending and time.monotonic() > deadline:
                names = ", ".join(p.name for p in pending)
                raise TimeoutError(f"not healthy after {timeout:.0f}s: {names}")
            time.sleep(0.2)

    def stop(self, *, grace: float = 25.0) -> None:
        with self._lock:
            self.stopping.set()
            processes = list(self.processes)
        for proc in processes:
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in processes:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()
        self.processes.clear()


@dataclass(frozen=True)
class Backoff:
    """Delays between restarts: ``initial`` doubling up to ``maximum``; a process that
    ran ``reset_after`` seconds before it exited starts again from ``initial`` (as
    Docker's restart policies do)."""

    initial: float = 1.0
    maximum: float = 30.0
    reset_after: float = 10.0

    def delay(self, consecutive: int) -> float:
        return min(self.maximum, self.initial * 2.0 ** min(consecutive - 1, 30))


class Supervisor:
    """Restarts the processes of a group that exit, like compose's
    ``restart: unless-stopped``, and says so through ``say``.

    :meth:`check` never sleeps: an exit schedules a restart at a time of ``clock``,
    and a later check starts the process once that time has come. So one service's
    backoff never delays another's restart, stopping is never held up by a delay, and
    tests drive the clock instead of sleeping. Processes are told apart by name.
    """

    def __init__(
        self,
        group: ServiceGroup,
        *,
        backoff: Backoff = Backoff(),
        clock: Callable[[], float] = time.monotonic,
        say: Callable[[str], None] = partial(print, flush=True),
    ) -> None:
        self.group = group
        self.backoff = backoff
        self._clock = clock
        self._say = say
        now = clock()
        self._started_at = {proc.name: now for proc in group.processes}
        self._consecutive: dict[str, int] = {}
        self._due: dict[str, float] = {}

    def check(self) -> None:
        """Notice exits and start the processes whose restart is due."""
        for proc in list(self.group.processes):
            code = proc.process.poll()
            now = self._clock()
            if code is None:
                self._started_at.setdefault(proc.name, now)  # started after this supervisor
                continue
            if self.group.stopping.is_set():
                continue
            due = self._due.get(proc.name)
            if due is None:
                self._schedule(proc, code, now)
            elif now >= due:
                del self._due[proc.name]
                if self.group.restart(proc):
                    self._started_at[proc.name] = now
                    self._say(
                        f"{proc.name} restarted (pid {proc.process.pid}); log {proc.log_path}"
                    )

    def _schedule(self, proc: ServiceProcess, code: int, now: float) -> None:
        ran = now - self._started_at.get(proc.name, now)
        consecutive = (
            1 if ran >= self.backoff.reset_after else self._consecutive.get(proc.name, 0) + 1
        )
        self._consecutive[proc.name] = consecutive
        delay = self.backoff.delay(consecutive)
        self._due[proc.name] = now + delay
        self._say(
            f"{proc.name} exited with {code}; restarting in {delay:.1f}s (restart {proc.restarts + 1})"
        )

    def run(self, stopping: threading.Event, *, interval: float = 0.2) -> None:
        """Check every ``interval`` seconds until ``stopping`` is set."""
        while not stopping.wait(interval):
            self.check()
