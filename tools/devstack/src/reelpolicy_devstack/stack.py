"""``make up``: the whole platform on this machine, embedded servers by default.

1. PostgreSQL: the embedded server (data kept in ``.devdata/postgres``) unless
   ``DATABASE_URL`` points at a server; one database per service is created on it.
2. Broker: the embedded Tansu (memory only) unless ``KAFKA_BOOTSTRAP_SERVERS`` is set;
   the topics are created with the partition counts the services expect.
3. Each service's migrations run (``reelpolicy-<svc> migrate``).
4. The broker started empty but the databases did not: so the registry and ingest
   *republish* their current state, and every outbox row sent in the last hour is
   queued again. Consumers are idempotent (event ids) and projections only apply
   newer versions, so the platform converges and emits no change twice.
5. The operator key is registered (``REELPOLICY_OPERATOR_KEY`` or a generated one kept
   in ``.devdata/operator_key``; one the registry refuses, e.g. revoked, is replaced
   by a fresh one), the policy catalog is synced (a revoked policy stays revoked), and
   on first start demo data (``reelpolicy-datagen``) is imported.
6. The four services start as separate processes, then the portal (its own database
   for sessions; it reaches the services through their HTTP APIs); once all are
   healthy their URLs are printed. A service that exits is started again with backoff (1 s doubling to
   30 s), appending to its log. Ctrl-C (or SIGTERM) stops everything this command
   started.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import secrets
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import asyncpg

from reelpolicy_common.auth import new_api_key
from reelpolicy_common.kafka import ensure_topics
from reelpolicy_devstack.mail import MailSink
from reelpolicy_devstack.operator_key import register_operator_key
from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
)
from reelpolicy_devstack.services import (
    DEFAULT_PORTS,
    PORTAL,
    PORTAL_PORT,
    SERVICES,
    CommandError,
    ServiceGroup,
    Supervisor,
    run,
)

REPLAY_WINDOW_SQL = "UPDATE outbox SET sent_at = NULL WHERE sent_at > now() - interval '1 hour'"


def _secret(path: Path, env_name: str, *, make: Callable[[], str]) -> str:
    """``env_name`` if set, else the value kept in ``path``, else a new one kept there."""
    value = os.environ.get(env_name)
    if value:
        return value
    if path.exists():
        return path.read_text().strip()
    value = make()
    path.write_text(value)
    path.chmod(0o600)
    return value


@dataclass
class Stack:
    root: Path
    data_dir: Path
    stopping: threading.Event = field(default_factory=threading.Event)
    postgres: EmbeddedPostgres | None = None
    broker: EmbeddedBroker | None = None
    mail: MailSink | None = None
    group: ServiceGroup = field(default_factory=ServiceGroup)

    def up(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        admin_url = os.environ.get("DATABASE_URL")
        if not admin_url:
            print("starting embedded PostgreSQL ...", flush=True)
            self.postgres = EmbeddedPostgres.start(self.data_dir / "postgres")
            admin_url = self.postgres.uri("postgres")
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS")
        fresh_broker = not bootstrap
        if not bootstrap:
            port = int(os.environ.get("REELPOLICY_BROKER_PORT", "9092"))
            print(f"starting embedded broker on 127.0.0.1:{port} ...", flush=True)
            self.broker = EmbeddedBroker.start(port, log_file=self.data_dir / "broker.log")
            bootstrap = self.broker.bootstrap_servers
        asyncio.run(ensure_topics(bootstrap_servers=bootstrap))
        self.mail = MailSink.start(
            self.data_dir / "mail", port=int(os.environ.get("SMTP_PORT", "1025"))
        )

        secret_key = _secret(
            self.data_dir / "secret_key",
            "REELPOLICY_SECRET_KEY",
            make=lambda: secrets.token_urlsafe(32),
        )
        sealing_keys = _secret(
            self.data_dir / "sealing_keys",
            "NOTIFY_SEALING_KEYS",
            make=lambda: "dev1:" + base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        )
        operator_key = _secret(
            self.data_dir / "operator_key",
            "REELPOLICY_OPERATOR_KEY",
            make=lambda: new_api_key()[1],
        )
        envs: dict[str, dict[str, str]] = {}
        for name in SERVICES:
            db = f"reelpolicy_{name}"
            asyncio.run(ensure_database(admin_url, db))
            envs[name] = {
                "SERVICE_NAME": name,
                "DATABASE_URL": database_uri(admin_url, db),
                "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
                "REELPOLICY_SECRET_KEY": secret_key,
                "NOTIFY_SEALING_KEYS": sealing_keys,
                "HTTP_PORT": os.environ.get(f"{name.upper()}_PORT", str(DEFAULT_PORTS[name])),
                "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(self.mail.port),
                "NOTIFY_ALLOW_PRIVATE_TARGETS": os.environ.get(
                    "NOTIFY_ALLOW_PRIVATE_TARGETS", "true"
                ),
            }
            run(name, "migrate", env=envs[name])
        if fresh_broker:
            for name in ("registry", "ingest"):
                run(name, "republish", env=envs[name])
            for name in SERVICES:
                asyncio.run(_requeue_recent(envs[name]["DATABASE_URL"]))
        operator_key = register_operator_key(
            operator_key, key_file=self.data_dir / "operator_key", registry_env=envs["registry"]
        )
        print(run("ingest", "sync", str(self.root / "catalog"), env=envs["ingest"]), end="")
        demo = self.data_dir / "demo.jsonl"
        if not demo.exists():
            counts = ["--enterprises", "200", "--productions", "1000"]
            run("datagen", *counts, "--seed", "7", "--out", str(demo), env=envs["registry"])
            run("registry", "import", str(demo), env=envs["registry"])

        envs[PORTAL] = self._portal_env(admin_url, envs)
        run(PORTAL, "migrate", env=envs[PORTAL])
        for name in (*SERVICES, PORTAL):
            self.group.start(
                name,
                port=int(envs[name]["HTTP_PORT"]),
                env=envs[name],
                log_dir=self.data_dir / "logs",
            )
        self.group.wait_healthy(timeout=90)
        print("\nreelpolicy is up:")
        for proc in self.group.processes:
            if proc.name == PORTAL:
                print(f"  {proc.name:<9} {proc.url}  (sign in with a company's API key)")
            else:
                print(f"  {proc.name:<9} {proc.url}  (docs {proc.url}/docs)")
        print(f"  operator key   {operator_key}")
        print(f"  mail sink      smtp://127.0.0.1:{self.mail.port} -> {self.mail.folder}/")
        print(f"  logs           {self.data_dir / 'logs'}/")
        print("Ctrl-C stops everything.", flush=True)

    def _portal_env(self, admin_url: str, envs: dict[str, dict[str, str]]) -> dict[str, str]:
        """The portal's settings: its own database (sessions), the services' URLs, and its
        two secrets kept in .devdata like the others (a Fernet key is 32 random bytes,
        url-safe base64)."""
        db = "reelpolicy_portal"
        asyncio.run(ensure_database(admin_url, db))
        session_secret = _secret(
            self.data_dir / "portal_session_secret",
            "PORTAL_SESSION_SECRET",
            make=lambda: secrets.token_urlsafe(32),
        )
        encryption_keys = _secret(
            self.data_dir / "portal_key_encryption_keys",
            "PORTAL_KEY_ENCRYPTION_KEYS",
            make=lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        )
        urls = {
            f"{name.upper()}_URL": f"http://127.0.0.1:{envs[name]['HTTP_PORT']}"
            for name in ("registry", "ingest", "rules", "notify")
        }
        return {
            "SERVICE_NAME": PORTAL,
            "DATABASE_URL": database_uri(admin_url, db),
            "HTTP_PORT": os.environ.get("PORTAL_PORT", str(PORTAL_PORT)),
            "PORTAL_SESSION_SECRET": session_secret,
            "PORTAL_KEY_ENCRYPTION_KEYS": encryption_keys,
            **urls,
        }

    def wait(self) -> None:
        """Restart services that exit (with backoff) until Ctrl-C or SIGTERM."""
        Supervisor(self.group).run(self.stopping)

    def down(self) -> None:
        print("\nstopping ...", flush=True)
        self.group.stop()
        if self.mail is not None:
            self.mail.stop()
        if self.broker is not None:
            self.broker.stop()
        if self.postgres is not None:
            self.postgres.stop()
        print("stopped.", flush=True)


async def _requeue_recent(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(REPLAY_WINDOW_SQL)
    finally:
        await conn.close()


def up(root: Path) -> int:
    stack = Stack(root=root, data_dir=root / ".devdata")

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stack.stopping.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    try:
        stack.up()
        stack.wait()
    except CommandError as exc:
        print(f"make up failed: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        with contextlib.suppress(Exception):
            stack.down()
    return 0
