"""Running the four services as separate processes, as ``make up`` and the e2e test do."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVICES: tuple[str, ...] = ("registry", "ingest", "rules", "notify")
DEFAULT_PORTS: dict[str, int] = {"registry": 8001, "ingest": 8002, "rules": 8003, "notify": 8004}


def command(service: str, *args: str) -> list[str]:
    """The console script of ``service`` (from this interpreter's environment)."""
    script = Path(sys.executable).with_name(f"reelpolicy-{service}")
    found = str(script) if script.exists() else shutil.which(f"reelpolicy-{service}")
    if found is None:
        raise FileNotFoundError(f"reelpolicy-{service} is not installed")
    return [found, *args]


def run(service: str, *args: str, env: dict[str, str], check: bool = True) -> str:
    """Run a one-shot command of ``service`` and return its output."""
    done = subprocess.run(
        command(service, *args), env={**os.environ, **env}, capture_output=True, text=True
    )
    if check and done.returncode != 0:
        raise RuntimeError(
            f"reelpolicy-{service} {' '.join(args)} failed ({done.returncode}):\n{done.stderr[-4000:]}"
        )
    return done.stdout


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@dataclass
class ServiceGroup:
    """The service processes started together; stopped together with SIGTERM."""

    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str, *, port: int, env: dict[str, str], log_dir: Path) -> ServiceProcess:
        log_dir.mkdir(parents=True, exist_ok=True)
        log_path = log_dir / f"{name}-{port}.log"
        out = open(log_path, "ab")  # noqa: SIM115 - owned by the child
        process = subprocess.Popen(
            command(name, "serve"),
            env={**os.environ, **env, "HTTP_PORT": str(port)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        started = ServiceProcess(name, port, process, log_path)
        self.processes.append(started)
        return started

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
        for proc in self.processes:
            if proc.process.poll() is None:
                proc.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace
        for proc in self.processes:
            remaining = max(0.1, deadline - time.monotonic())
            try:
                proc.process.wait(timeout=remaining)
            except subprocess.TimeoutExpired:
                proc.process.kill()
                proc.process.wait()
        self.processes.clear()
