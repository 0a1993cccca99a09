"""Two ``reelpolicy-rules serve`` processes in one consumer group, one database and broker."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections import Counter

import pytest
from rules_helpers import (
    collecting,
    enterprise_event,
    enterprise_policy,
    policy_event,
    produce,
    uid,
)

from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_contracts.events import EventType
from reelpolicy_devstack.servers import free_port
from service_harness import ROOT, eventually, migrate_service, service_env

pytestmark = [pytest.mark.servers, pytest.mark.e2e]


async def test_two_instances_emit_each_change_once(
    fresh_database: str, bootstrap_servers: str
) -> None:
    await ensure_topics(bootstrap_servers=bootstrap_servers)
    await migrate_service(fresh_database, "reelpolicy_rules.migrations", "rules")
    group = uid("scale")
    procs = []
    for _ in range(2):
        env = service_env(
            service="rules",
            database_url=fresh_database,
            bootstrap_servers=bootstrap_servers,
            port=free_port(),
        )
        env = {**os.environ, **env, "KAFKA_CONSUMER_GROUP": group, "LOG_LEVEL": "WARNING"}
        cmd = [str(ROOT / ".venv/bin/reelpolicy-rules"), "serve"]
        procs.append(subprocess.Popen(cmd, env=env))  # noqa: ASYNC220
    try:
        async with collecting(bootstrap_servers) as seen:
            pid = uid("ts")
            await produce(bootstrap_servers, topics.POLICY, policy_event(enterprise_policy(pid), 1))
            ids = [uid("e") for _ in range(40)]
            events = [
                enterprise_event(e, 1, employees=20 if i % 2 else 5) for i, e in enumerate(ids)
            ]
            events += [enterprise_event(e, 2, employees=30) for e in ids[:10]]  # 5 become eligible
            events += events[:5]  # redelivered duplicates
            await produce(bootstrap_servers, topics.REGISTRY, *events)
            mine = set(ids)

            def changes() -> list[tuple[str, str, str, int | None]]:
                return [
                    (
                        e.payload["subject_id"],
                        e.payload["policy_id"],
                        e.payload["status"],
                        e.payload["amount_cny"],
                    )
                    for e in seen.of(EventType.eligibility_changed, policy_id=pid)
                    if e.payload["subject_id"] in mine
                ]

            await eventually(lambda: len(changes()) >= 25, timeout=90)
            await asyncio.sleep(2)
            got = changes()
            assert max(Counter(got).values()) == 1
            expected = {e for i, e in enumerate(ids) if i % 2} | set(ids[:10:2])
            assert {s for s, _, status, _ in got if status == "eligible"} == expected
            assert len(got) == len(expected)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)
