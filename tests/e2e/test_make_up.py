"""``make up``'s orchestration, run twice: up, Ctrl-C, up again comes back consistent.

The stack uses the session's PostgreSQL (through ``DATABASE_URL``, as with an external
server) and starts its own embedded broker, which keeps nothing across the restart:
the second start must republish state and converge without emitting any change again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from pathlib import Path

import httpx
import pytest

from reelpolicy_common.db.pool import connect
from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, free_port
from reelpolicy_devstack.services import ServiceProcess
from reelpolicy_devstack.stack import Stack
from service_harness import ROOT

pytestmark = [pytest.mark.servers, pytest.mark.e2e]


async def count(dsn: str, table: str) -> int:
    conn = await connect(dsn)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {table}"))
    finally:
        await conn.close()


async def settled(dsn: str, table: str, *, at_least: int, within: float = 120) -> int:
    """Wait until ``table`` has ``at_least`` rows and stopped growing; its count."""
    async with asyncio.timeout(within):
        last = -1
        while (now := await count(dsn, table)) != last or now < at_least:
            last = now
            await asyncio.sleep(3)
        return now


async def serving_again(proc: ServiceProcess, *, killed_pid: int, within: float = 60) -> None:
    """Wait until ``proc`` runs as a new process that answers its health check."""
    async with asyncio.timeout(within), httpx.AsyncClient() as client:
        while True:
            if proc.process.pid != killed_pid:
                try:
                    if (await client.get(f"{proc.url}/healthz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
            await asyncio.sleep(0.2)


def test_up_down_up(
    embedded_postgres: EmbeddedPostgres, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    admin = embedded_postgres.uri("postgres")
    monkeypatch.setenv("DATABASE_URL", admin)
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.setenv("REELPOLICY_BROKER_PORT", str(free_port()))
    monkeypatch.setenv("SMTP_PORT", str(free_port()))
    for name in ("REGISTRY", "INGEST", "RULES", "NOTIFY", "PORTAL"):
        monkeypatch.setenv(f"{name}_PORT", str(free_port()))
    rules_db = database_uri(admin, "reelpolicy_rules")

    stack = Stack(root=ROOT, data_dir=tmp_path)
    try:
        stack.up()
        urls = {p.name: p.url for p in stack.group.processes}
        key = (tmp_path / "operator_key").read_text().strip()
        policies = httpx.get(
            f"{urls['ingest']}/v1/policies", headers={"Authorization": f"Bearer {key}"}
        )
        assert policies.status_code == 200
        assert len(policies.json()["items"]) >= 20  # the catalog was synced
        # the portal is up beside the services and shows its sign-in form
        sign_in = httpx.get(f"{urls['portal']}/sign-in")
        assert sign_in.status_code == 200
        assert 'name="api_key"' in sign_in.text

        # rules has evaluated the demo data (1,200 records) and stopped changing
        handled = asyncio.run(settled(rules_db, "processed_events", at_least=1200))
        changes = asyncio.run(settled(rules_db, "result_history", at_least=1))
    finally:
        stack.down()

    again = Stack(root=ROOT, data_dir=tmp_path)
    supervising = threading.Thread(target=again.wait)  # what `make up` does once all are up
    try:
        again.up()
        supervising.start()
        for proc in again.group.processes:
            assert httpx.get(f"{proc.url}/healthz").json() == {"status": "ok"}
        # every record was republished to the empty broker and handled again ...
        asyncio.run(settled(rules_db, "processed_events", at_least=handled + 1200))
        # ... and nothing changed, so nothing was emitted twice
        assert asyncio.run(count(rules_db, "result_history")) == changes

        # a service that dies is started again and serves
        ingest = next(p for p in again.group.processes if p.name == "ingest")
        killed = ingest.process.pid
        os.kill(killed, signal.SIGKILL)
        asyncio.run(serving_again(ingest, killed_pid=killed))
        assert supervising.is_alive()
    finally:
        again.stopping.set()  # Ctrl-C
        if supervising.is_alive():
            supervising.join(timeout=10)
        again.down()
