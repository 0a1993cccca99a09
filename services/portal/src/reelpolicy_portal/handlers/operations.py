"""The operator's pages: failing endpoints, disabled subscriptions, dead letters, and
the simulation of a draft policy."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from reelpolicy_portal.domain.simulation import draft_json
from reelpolicy_portal.handlers.alerts import LogLine, log_lines
from reelpolicy_portal.ports import Operations

FAILED_READ = 500


@dataclass(frozen=True)
class FailingEndpoint:
    subscription: dict[str, Any]
    failed: int
    latest: LogLine


@dataclass(frozen=True)
class Health:
    failing: list[FailingEndpoint]
    disabled: list[dict[str, Any]]


async def endpoint_health(ops: Operations, api_key: str) -> Health:
    """Subscriptions whose deliveries failed (the newest failures, most first), and the
    subscriptions notify disabled or someone paused."""
    subscriptions, failed = await asyncio.gather(
        ops.subscriptions(api_key), ops.deliveries(api_key, status="failed", limit=FAILED_READ)
    )
    by_id = {s["id"]: s for s in subscriptions}
    grouped: dict[str, list[LogLine]] = defaultdict(list)
    for line in log_lines(failed):
        grouped[line.delivery["subscription_id"]].append(line)
    failing = [
        FailingEndpoint(by_id[sid], len(lines), lines[0])
        for sid, lines in grouped.items()
        if sid in by_id
    ]
    failing.sort(key=lambda f: -f.failed)
    return Health(failing, [s for s in subscriptions if not s["enabled"]])


async def simulate(ops: Operations, api_key: str, upload: bytes) -> dict[str, Any]:
    """Rules' impact of the draft. Raises DraftRejectedError: the portal's reading of
    the YAML, or rules' check of the policy."""
    return await ops.simulate(api_key, draft_json(upload))
