"""The platform the fuzz suite attacks, its settings, and the tally of requests sent.

The four services run as separate processes on the embedded PostgreSQL and broker,
set up as ``make up`` sets them up: migrations, an operator key, the policy catalog
synced and a small demo data set imported, so that GETs find real records. Three keys
are issued through the registry's CLI and reach the other services as events:

- ``operator``: the main run's operator key;
- ``company``: a company key bound to a demo enterprise that has productions;
- ``api_keys``: an operator key used only by the API-key operations, so that the
  fuzzer's ``DELETE /v1/api-keys/{key_id}`` can never revoke the key another run uses.

Settings come from the environment: ``FUZZ_SEED`` and ``FUZZ_EXAMPLES`` (``make fuzz
SEED=... EXAMPLES=...``); the defaults are the bounded run ``make test`` makes.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from reelpolicy_devstack.servers import (
    database_uri,
    ensure_database,
    free_port,
)
from reelpolicy_devstack.services import SERVICES, ServiceGroup, run
from service_harness import ROOT, SEALING_KEYS, SECRET_KEY, eventually

FUZZ_SEED = int(os.environ.get("FUZZ_SEED") or 22)
FUZZ_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES") or 10)
"""Examples per operation in the fuzzing phase (the coverage phase adds its own)."""
COMPANY_RATE_LIMIT_PER_MINUTE = 1_000_000
"""Passed to every service as ``RATE_LIMIT_PER_MINUTE`` (the per-key rate limit; rename
it here if the setting is named otherwise) so that the fuzzer's own pace never trips it
with the company key; operator keys are exempt by default. The suite does not treat 429
specially: one it meets is checked against the OpenAPI like any other status."""
DEMO_ENTERPRISES = 20
DEMO_PRODUCTIONS = 60


@dataclass
class FuzzPlatform:
    urls: dict[str, str]
    operator_key: str
    company_key: str
    api_keys_key: str


@dataclass
class Tally:
    """Requests sent per (service, key), for the closing summary."""

    requests: Counter[tuple[str, str]] = field(default_factory=Counter)
    accepted: Counter[tuple[str, str]] = field(default_factory=Counter)
    """2xx answers: the key reached the service (a run answered only 401 proves nothing)."""
    log_dir: Path | None = None

    def per_service(self) -> dict[str, int]:
        totals: Counter[str] = Counter()
        for (service, _), count in self.requests.items():
            totals[service] += count
        return dict(totals)


TALLY = Tally()


def _service_env(name: str, *, admin_uri: str, bootstrap: str, suffix: str) -> dict[str, str]:
    db = f"fuzz_{name}_{suffix}"
    asyncio.run(ensure_database(admin_uri, db, fresh=True))
    return {
        "SERVICE_NAME": name,
        "DATABASE_URL": database_uri(admin_uri, db),
        "KAFKA_BOOTSTRAP_SERVERS": bootstrap,
        "KAFKA_CONSUMER_GROUP": f"fuzz-{name}-{suffix}",
        "REELPOLICY_SECRET_KEY": SECRET_KEY,
        "NOTIFY_SEALING_KEYS": SEALING_KEYS,
        "RATE_LIMIT_PER_MINUTE": str(COMPANY_RATE_LIMIT_PER_MINUTE),
        "LOG_JSON": "true",
    }


def _issue_key(registry_env: dict[str, str], *options: str) -> str:
    return run("registry", "api-keys", "create", *options, env=registry_env).strip()


def _demo_enterprise_with_productions(registry: str, operator_key: str) -> str:
    auth = {"Authorization": f"Bearer {operator_key}"}
    productions = httpx.get(
        f"{registry}/v1/productions", headers=auth, params={"limit": 1}, timeout=10
    )
    productions.raise_for_status()
    return str(productions.json()["items"][0]["enterprise_id"])


async def _keys_known_everywhere(urls: dict[str, str], keys: list[str]) -> None:
    """Wait until every service knows every key (they travel as api_key events): any
    answer but 401 (a company key may be refused a list for other reasons)."""
    probes = {
        "registry": "/v1/productions",
        "ingest": "/v1/policies",
        "rules": "/v1/eligibility",
        "notify": "/v1/subscriptions",
    }

    async def known() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            for name, path in probes.items():
                for key in keys:
                    auth = {"Authorization": f"Bearer {key}"}
                    if (await http.get(urls[name] + path, headers=auth)).status_code == 401:
                        return False
        return True

    await eventually(known, timeout=90, interval=0.5)


async def _rules_has_eligibility(rules: str, key: str, enterprise_id: str) -> None:
    """Wait until rules has evaluated the demo enterprise against the catalog."""

    async def found() -> bool:
        async with httpx.AsyncClient(timeout=10) as http:
            answer = await http.get(
                f"{rules}/v1/eligibility",
                headers={"Authorization": f"Bearer {key}"},
                params={"enterprise_id": enterprise_id, "include_ineligible": "true"},
            )
        return answer.status_code == 200 and bool(answer.json().get("items"))

    await eventually(found, timeout=90, interval=0.5)


@contextlib.contextmanager
def start_platform(
    *, admin_uri: str, bootstrap: str, log_dir: Path, suffix: str
) -> Iterator[FuzzPlatform]:
    """The four services started as ``make up`` starts them, with the fuzz suite's keys."""
    envs = {
        name: _service_env(name, admin_uri=admin_uri, bootstrap=bootstrap, suffix=suffix)
        for name in SERVICES
    }
    registry_env = envs["registry"]
    group = ServiceGroup()
    TALLY.log_dir = log_dir
    try:
        for name in SERVICES:
            run(name, "migrate", env=envs[name])
        operator_key = _issue_key(registry_env, "--role", "operator", "--label", "fuzz")
        api_keys_key = _issue_key(registry_env, "--role", "operator", "--label", "fuzz keys")
        run("ingest", "sync", str(ROOT / "catalog"), env=envs["ingest"])
        demo = log_dir / "demo.jsonl"
        counts = ["--enterprises", str(DEMO_ENTERPRISES), "--productions", str(DEMO_PRODUCTIONS)]
        run("datagen", *counts, "--seed", "7", "--out", str(demo), env=registry_env)
        run("registry", "import", str(demo), env=registry_env)
        urls = {
            name: group.start(name, port=free_port(), env=envs[name], log_dir=log_dir).url
            for name in SERVICES
        }
        group.wait_healthy(timeout=90)
        enterprise_id = _demo_enterprise_with_productions(urls["registry"], operator_key)
        company_key = _issue_key(
            registry_env, "--role", "company", "--enterprise", enterprise_id, "--label", "fuzz"
        )
        asyncio.run(_keys_known_everywhere(urls, [operator_key, company_key, api_keys_key]))
        asyncio.run(_rules_has_eligibility(urls["rules"], operator_key, enterprise_id))
        yield FuzzPlatform(
            urls=urls,
            operator_key=operator_key,
            company_key=company_key,
            api_keys_key=api_keys_key,
        )
    finally:
        group.stop()
