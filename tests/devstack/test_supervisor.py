"""``make up``'s supervisor on real child processes; its clock is driven by the test."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from reelpolicy_devstack.services import Backoff, ServiceGroup, ServiceProcess, Supervisor

CRASHER = [sys.executable, "-c", "import sys; print('booted', flush=True); sys.exit(3)"]
SLEEPER = [sys.executable, "-c", "import time; time.sleep(120)"]


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def group() -> Iterator[ServiceGroup]:
    services = ServiceGroup()
    yield services
    services.stop(grace=5)


def exited(proc: ServiceProcess) -> int:
    return proc.process.wait(timeout=10)


def test_an_exiting_process_is_restarted_with_doubling_capped_delays(
    group: ServiceGroup, tmp_path: Path
) -> None:
    proc = group.start("crasher", port=1, env={}, log_dir=tmp_path, argv=CRASHER)
    clock, said = Clock(), list[str]()
    supervisor = Supervisor(
        group, backoff=Backoff(initial=1, maximum=4, reset_after=60), clock=clock, say=said.append
    )
    pids = [proc.process.pid]
    for restart, delay in enumerate([1.0, 2.0, 4.0, 4.0], start=1):
        assert exited(proc) == 3
        supervisor.check()
        assert said[-1] == f"crasher exited with 3; restarting in {delay:.1f}s (restart {restart})"
        clock.now += delay - 0.1
        supervisor.check()
        assert proc.process.pid == pids[-1]  # not before its time
        clock.now += 0.1
        supervisor.check()
        assert proc.process.pid != pids[-1]
        assert said[-1].startswith(f"crasher restarted (pid {proc.process.pid})")
        pids.append(proc.process.pid)
    assert proc.restarts == 4

    # a process that ran longer than reset_after starts again from the initial delay
    assert exited(proc) == 3
    clock.now += 60
    supervisor.check()
    assert said[-1] == "crasher exited with 3; restarting in 1.0s (restart 5)"

    log = proc.log_path.read_text()
    assert log.count("booted") == 5  # every run appended to the same log
    assert "restart 4 of crasher" in log


def test_a_killed_process_is_reported_and_comes_back(group: ServiceGroup, tmp_path: Path) -> None:
    proc = group.start("registry", port=1, env={}, log_dir=tmp_path, argv=SLEEPER)
    clock, said = Clock(), list[str]()
    supervisor = Supervisor(group, clock=clock, say=said.append)
    supervisor.check()
    assert said == []
    proc.process.send_signal(signal.SIGKILL)
    assert exited(proc) == -9
    supervisor.check()
    assert said == ["registry exited with -9; restarting in 1.0s (restart 1)"]
    clock.now += 1
    supervisor.check()
    assert proc.process.poll() is None  # running again


def test_nothing_is_restarted_once_stopping_began(group: ServiceGroup, tmp_path: Path) -> None:
    crasher = group.start("crasher", port=1, env={}, log_dir=tmp_path, argv=CRASHER)
    group.start("sleeper", port=2, env={}, log_dir=tmp_path, argv=SLEEPER)
    clock, said = Clock(), list[str]()
    supervisor = Supervisor(group, clock=clock, say=said.append)
    exited(crasher)
    supervisor.check()  # a restart is due in 1 s
    pid = crasher.process.pid

    group.stop(grace=5)  # the sleeper exits on SIGTERM: not a crash to restart
    clock.now += 5
    supervisor.check()
    assert group.restart(crasher) is False
    assert crasher.process.pid == pid
    assert len(said) == 1


def test_run_restarts_in_real_time_and_returns_when_stopped(
    group: ServiceGroup, tmp_path: Path
) -> None:
    proc = group.start("crasher", port=1, env={}, log_dir=tmp_path, argv=CRASHER)
    said = list[str]()
    supervisor = Supervisor(group, backoff=Backoff(initial=0.05, maximum=0.1), say=said.append)
    stopping = threading.Event()
    runner = threading.Thread(target=supervisor.run, args=(stopping,), kwargs={"interval": 0.01})
    runner.start()
    deadline = time.monotonic() + 20
    while proc.restarts < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    stopping.set()
    runner.join(timeout=2)
    assert not runner.is_alive()
    assert proc.restarts >= 3
    restarts = proc.restarts
    time.sleep(0.3)
    assert proc.restarts == restarts  # nothing after stop
    assert "crasher exited with 3; restarting in 0.1s (restart 2)" in said


def test_stack_wait_restarts_a_killed_service_until_ctrl_c(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from reelpolicy_devstack import services
    from reelpolicy_devstack.stack import Stack

    monkeypatch.setattr(services, "command", lambda service, *args: SLEEPER)
    stack = Stack(root=tmp_path, data_dir=tmp_path)
    proc = stack.group.start("ingest", port=1, env={}, log_dir=tmp_path)
    waiting = threading.Thread(target=stack.wait)
    waiting.start()
    try:
        first = proc.process.pid
        proc.process.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while proc.process.pid == first and time.monotonic() < deadline:
            time.sleep(0.05)
        assert proc.process.pid != first
        assert proc.process.poll() is None
        assert waiting.is_alive()
    finally:
        stack.stopping.set()  # what Ctrl-C does
        waiting.join(timeout=5)
        stack.group.stop(grace=5)
    assert not waiting.is_alive()
    assert "ingest exited with -9; restarting in 1.0s (restart 1)" in capsys.readouterr().out
