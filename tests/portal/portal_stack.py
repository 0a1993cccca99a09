"""The portal over TCP in the test process, in front of the four services (in process,
fresh databases, the module's broker), and the browser that drives it.

The portal reaches the services through httpx transports onto their apps (their real
HTTP handling, without a port each); the browser reaches the portal on a real port.
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from cryptography.fernet import Fernet
from stdnum.cn import uscc

from in_process_services import InProcessService, four_services
from reelpolicy_devstack.servers import database_uri, ensure_database
from reelpolicy_portal.config import Settings
from reelpolicy_portal.main import create_app
from service_harness import ROOT, migrate_service, settings_for

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
INSTALL_CHROMIUM = (
    f"the browser tests drive Debian's Chromium at {CHROMIUM} (Playwright's own download"
    " cannot work here): apt-get install chromium fonts-noto-cjk (.ci/run installs them)"
)
SESSION_SECRET = "portal-test-session-secret-0123456789"
ARTIFACTS = ROOT / "artifacts" / "portal"
"""Screenshots the browser tests save (gitignored)."""


def credit_code(region: str) -> str:
    body = f"91{region}{uuid.uuid4().int % 10**9:09d}"
    return body + uscc.calc_check_digit(body)


def chromium_path() -> str:
    """Debian's Chromium, or the test fails saying how to install it (never a skip)."""
    found = shutil.which(CHROMIUM) or shutil.which("chromium")
    assert found, INSTALL_CHROMIUM
    return found


@dataclass
class PortalStack:
    services: dict[str, InProcessService]
    url: str
    portal_dsn: str

    @property
    def registry(self) -> httpx.AsyncClient:
        """The registry with an operator key."""
        return self.services["registry"].client

    async def company(
        self, name: str, *, region: str = "310110", established_on: str | None = None
    ) -> tuple[dict[str, Any], str]:
        """A new enterprise and a company key of its own (issued through the registry)."""
        body: dict[str, Any] = {
            "name": name,
            "credit_code": credit_code(region),
            "region_code": region,
            "kind": "production_company",
        }
        if established_on is not None:
            body["established_on"] = established_on
        created = await self.registry.post("/v1/enterprises", json=body)
        assert created.status_code == 201, created.text
        enterprise = created.json()
        issued = await self.registry.post(
            "/v1/api-keys",
            json={"role": "company", "enterprise_id": enterprise["id"], "label": name},
        )
        assert issued.status_code == 201, issued.text
        return enterprise, issued.json()["key"]


async def submit_policy(ingest: InProcessService, name: str) -> None:
    document = (ROOT / "catalog" / f"{name}.yaml").read_bytes()
    response = await ingest.client.post(
        "/v1/policies", content=document, headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code in (200, 201), response.text


@contextlib.asynccontextmanager
async def portal_stack(
    admin_uri: str, bootstrap: str, *, policies: tuple[str, ...]
) -> AsyncIterator[PortalStack]:
    async with four_services(admin_uri, bootstrap) as services:
        for name in policies:
            await submit_policy(services["ingest"], name)
        database = f"inproc_portal_{uuid.uuid4().hex[:8]}"
        await ensure_database(admin_uri, database)
        dsn = database_uri(admin_uri, database)
        await migrate_service(dsn, "reelpolicy_portal.migrations", "portal")
        settings: Settings = settings_for(
            Settings,
            database_url=dsn,
            bootstrap_servers=bootstrap,
            portal_session_secret=SESSION_SECRET,
            portal_key_encryption_keys=Fernet.generate_key().decode(),
            portal_refresh_seconds=0.5,
        )
        transports: dict[str, httpx.AsyncBaseTransport] = {
            name: httpx.ASGITransport(app=services[name].app)
            for name in ("registry", "rules", "ingest", "notify")
        }
        app = create_app(settings, transports=transports)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, access_log=False)
        )
        serving = asyncio.create_task(server.serve())
        try:
            while not server.started:
                assert not serving.done(), "the portal did not start"
                await asyncio.sleep(0.02)
            port = server.servers[0].sockets[0].getsockname()[1]
            yield PortalStack(services, f"http://127.0.0.1:{port}", dsn)
        finally:
            server.should_exit = True
            await serving


def artifact_dir() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS
