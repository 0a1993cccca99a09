"""The platform as ``make up`` runs it, with fault points for the chaos run.

An embedded PostgreSQL (own data directory), the embedded broker, the SMTP sink, a
webhook receiver and the four services as separate processes, like ``Stack.up``:
one database per service, migrations, the operator key, the catalog synced, demo
data imported. Two :class:`FaultProxy` sit in the services' paths: one in front of
the broker (which advertises the proxy, so clients keep using it after bootstrap)
and one in front of PostgreSQL's unix socket (services get a TCP DSN through it).

A service that exits, or that the chaos run kills, is started again after a delay,
as a supervisor would (:meth:`Platform.supervise`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import psutil
from receiver import ChaosReceiver

from reelpolicy_common.auth import new_api_key
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_devstack.mail import MailSink
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
)
from reelpolicy_devstack.services import SERVICES, command, run
from tcp_fault_proxy import FaultProxy, postgres_proxy

ROOT = Path(__file__).resolve().parents[2]
SECRET_KEY = "chaos-run-secret-key-0123456789abcdef"
SEALING_KEYS = "chaos:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
"""notify's key ring (a fresh key per run, as ``make up`` makes one)."""
DEMO_ENTERPRISES = 200
DEMO_PRODUCTIONS = 1000
# Short enough that alerts held back by a failing receiver converge within a minute
# of the last fault, long enough (about 4 minutes in all) to outlast every fault.
NOTIFY_RETRY_SCHEDULE = "0,1,2,4,8,15,30,30,30,30,30,30"
NOTIFY_REQUEST_TIMEOUT_SECONDS = 5.0


@dataclass
class ServiceSlot:
    """One service: its process (restarted in place, on the same port) and log."""

    name: str
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restart_at: float | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as out:
            out.write(f"\n==== chaos: start #{self.starts + 1} ====\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                command(self.name, "serve"),
                env={**os.environ, **self.env},
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.starts += 1
        self.restart_at = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL the service's whole process group: a crash, nothing flushed."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def terminate(self, *, grace: float) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()


@dataclass
class Platform:
    log_dir: Path
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    mail: MailSink | None = None
    receiver: ChaosReceiver | None = None
    pg_proxy: FaultProxy | None = None
    broker_proxy: FaultProxy | None = None
    services: dict[str, ServiceSlot] = field(default_factory=dict)
    direct_dsns: dict[str, str] = field(default_factory=dict)
    operator_key: str = ""
    frozen_pids: list[int] = field(default_factory=list)
    postgres_down: bool = False

    # start and stop -----------------------------------------------------------------------
    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        (self.log_dir / "services").mkdir(exist_ok=True)
        self.postgres = EmbeddedPostgres.start(self.log_dir / "postgres")
        admin = self.postgres.uri("postgres")
        self.pg_proxy = postgres_proxy(admin)
        broker_port = free_port()
        self.broker_proxy = FaultProxy(
            upstream=("127.0.0.1", broker_port), name="broker-proxy"
        ).start()
        self.broker = EmbeddedBroker.start(
            broker_port,
            log_file=self.log_dir / "broker.log",
            advertised_port=self.broker_proxy.port,
        )
        asyncio.run(ensure_topics(bootstrap_servers=self.broker.bootstrap_servers))
        self.mail = MailSink.start(self.log_dir / "mail", port=free_port())
        self.receiver = ChaosReceiver(log_path=self.log_dir / "receiver.jsonl")
        self.operator_key = new_api_key()[1]

        user = urlsplit(admin).username or "postgres"
        for name in SERVICES:
            db = f"reelpolicy_{name}"
            asyncio.run(ensure_database(admin, db))
            self.direct_dsns[name] = database_uri(admin, db)
            env = {
                "SERVICE_NAME": name,
                "DATABASE_URL": f"postgresql://{user}@127.0.0.1:{self.pg_proxy.port}/{db}",
                "KAFKA_BOOTSTRAP_SERVERS": self.broker_proxy.address,
                "REELPOLICY_SECRET_KEY": SECRET_KEY,
                "NOTIFY_SEALING_KEYS": SEALING_KEYS,
                "HTTP_PORT": str(free_port()),
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.mail.port),
                "NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
                "NOTIFY_RETRY_SCHEDULE": NOTIFY_RETRY_SCHEDULE,
                "NOTIFY_REQUEST_TIMEOUT_SECONDS": str(NOTIFY_REQUEST_TIMEOUT_SECONDS),
                "LOG_JSON": "true",
            }
            run(name, "migrate", env=env)
            self.services[name] = ServiceSlot(
                name=name,
                port=int(env["HTTP_PORT"]),
                env=env,
                log_path=self.log_dir / "services" / f"{name}.log",
            )
        registry_env = self.services["registry"].env
        run(
            "registry",
            *("api-keys", "create", "--role", "operator", "--label", "chaos"),
            *("--key", self.operator_key),
            env=registry_env,
        )
        run("ingest", "sync", str(ROOT / "catalog"), env=self.services["ingest"].env)
        demo = self.log_dir / "demo.jsonl"
        run(
            "datagen",
            *("--enterprises", str(DEMO_ENTERPRISES), "--productions", str(DEMO_PRODUCTIONS)),
            *("--seed", "7", "--out", str(demo)),
            env=registry_env,
        )
        run("registry", "import", str(demo), env=registry_env)
        for slot in self.services.values():
            slot.start()
        self.wait_healthy(timeout=120)

    def wait_healthy(self, *, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        pending = list(self.services.values())
        while pending:
            for slot in list(pending):
                if not slot.alive():
                    tail = slot.log_path.read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{slot.name} exited while starting:\n{tail}")
                with contextlib.suppress(httpx.HTTPError):
                    if httpx.get(f"{slot.url}/healthz", timeout=1).status_code == 200:
                        pending.remove(slot)
            if pending and time.monotonic() > deadline:
                raise TimeoutError(f"not healthy: {', '.join(s.name for s in pending)}")
            time.sleep(0.3)

    def stop(self) -> None:
        """Stop everything this platform started (safe to call twice, or half started)."""
        self.thaw_postgres()
        for proxy in (self.pg_proxy, self.broker_proxy):
            if proxy is not None:
                proxy.heal()
        for slot in self.services.values():
            slot.terminate(grace=10)
        for proxy in (self.pg_proxy, self.broker_proxy):
            if proxy is not None:
                proxy.stop()
        if self.receiver is not None:
            self.receiver.close()
        if self.mail is not None:
            with contextlib.suppress(Exception):
                self.mail.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
            shutil.rmtree(self.log_dir / "postgres", ignore_errors=True)  # data, not logs

    # the supervisor -----------------------------------------------------------------------
    async def supervise(self, *, backoff: float = 2.0) -> None:
        """Start again every service that is down once its restart time has come; a
        service that exited by itself is given ``backoff`` seconds."""
        while True:
            now = time.monotonic()
            for slot in self.services.values():
                if slot.alive():
                    continue
                if slot.restart_at is None:
                    slot.restart_at = now + backoff
                elif now >= slot.restart_at:
                    slot.start()
            await asyncio.sleep(0.2)

    def kill(self, name: str, *, restart_after: float) -> None:
        slot = self.services[name]
        slot.kill()
        slot.restart_at = time.monotonic() + restart_after

    # PostgreSQL outage --------------------------------------------------------------------
    def stop_postgres(self) -> None:
        """The database as its clients see a stopped server: every connection reset, new
        ones refused (at the proxy: the server and its data stay as they are)."""
        assert self.pg_proxy is not None
        self.postgres_down = True
        self.pg_proxy.refuse()
        self.pg_proxy.cut()

    def start_postgres(self) -> None:
        assert self.pg_proxy is not None
        self.postgres_down = False
        self.pg_proxy.heal()

    def freeze_postgres(self) -> None:
        """SIGSTOP the postmaster and every child: an outage that loses nothing."""
        assert self.postgres is not None
        postmaster = psutil.Process(self.postgres.server.get_pid())
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.send_signal(signal.SIGSTOP)
                self.frozen_pids.append(process.pid)

    def thaw_postgres(self) -> None:
        for pid in self.frozen_pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
        self.frozen_pids.clear()

    def heal(self) -> None:
        """End every fault the platform itself holds (the receiver heals on its own)."""
        self.thaw_postgres()
        self.postgres_down = False
        for proxy in (self.pg_proxy, self.broker_proxy):
            if proxy is not None:
                proxy.heal()

    @property
    def urls(self) -> dict[str, str]:
        return {name: slot.url for name, slot in self.services.items()}
