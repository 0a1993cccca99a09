"""Every series the alert rules and the dashboard name is on the services' ``/metrics``.

The four services and the portal run as separate processes (``reelpolicy-<svc> serve``,
as in production: each its own prometheus-client registry) on the embedded servers, and
get traffic along the whole event path: enterprises and a production in the
registry, a webhook subscription in notify, a policy in ingest, which rules
evaluates and notify delivers to a local receiver, with reads and refused requests
on every service; the portal gets a sign-in page, refused sign-ins and a 404. Then each
process's ``/metrics`` is scraped. Every name that deploy/prometheus/alerts.yml and the
Grafana dashboard use must be offered (at least by its HELP/TYPE lines: a labelled
metric nothing has set yet has no sample) by the services it selects: each one of them
for the dashboard's per-service row, at least one for the rest, and the portal for
every one that selects it (only series it has may: ``ops_pack.PORTAL_SERIES``).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.fernet import Fernet
from ops_pack import EVENT_SERVICES, PORTAL, PORTAL_SERIES, SERVICES, exposed_names, used_series
from prometheus_client.parser import text_string_to_metric_families
from stdnum.cn import uscc

from reelpolicy_common.kafka import ensure_topics
from reelpolicy_contracts import topics
from reelpolicy_devstack.servers import EmbeddedPostgres, database_uri, ensure_database, free_port
from reelpolicy_devstack.services import ServiceGroup
from service_harness import add_api_key, eventually, migrate_service, service_env
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.servers

REGION = "310110"
Samples = dict[str, list[tuple[dict[str, str], float]]]
PROXY = "127.0.0.2"
"""The portal's clients connect from this loopback address, as an ingress would from its
own: not one uvicorn trusts by default (127.0.0.1, ::1), so their X-Forwarded-For counts
only because the portal is started with FORWARDED_ALLOW_IPS naming it."""


@pytest.fixture
async def platform(
    embedded_postgres: EmbeddedPostgres, bootstrap_servers: str, tmp_path: Path
) -> AsyncIterator[dict[str, httpx.AsyncClient]]:
    """The four services and the portal as processes; a client with an operator key for
    each service, and one for the portal that connects as its ingress would."""
    await ensure_topics(bootstrap_servers=bootstrap_servers)
    admin = embedded_postgres.uri()
    group = ServiceGroup()
    clients: dict[str, httpx.AsyncClient] = {}
    urls: dict[str, str] = {}
    try:
        for name in EVENT_SERVICES:
            database = f"metrics_{name}_{uuid.uuid4().hex[:8]}"
            await ensure_database(admin, database)
            dsn = database_uri(admin, database)
            await migrate_service(dsn, f"reelpolicy_{name}.migrations", name)
            env = service_env(service=name, database_url=dsn, bootstrap_servers=bootstrap_servers)
            env["NOTIFY_ALLOW_PRIVATE_TARGETS"] = "true"  # the receiver is on 127.0.0.1
            started = group.start(name, port=free_port(), env=env, log_dir=tmp_path / "logs")
            urls[name] = started.url
            clients[name] = httpx.AsyncClient(
                base_url=started.url,
                headers={"Authorization": f"Bearer {await add_api_key(dsn)}"},
                timeout=30,
            )
        database = f"metrics_portal_{uuid.uuid4().hex[:8]}"
        await ensure_database(admin, database)
        dsn = database_uri(admin, database)
        await migrate_service(dsn, "reelpolicy_portal.migrations", PORTAL)
        portal_env = {
            "SERVICE_NAME": PORTAL,
            "DATABASE_URL": dsn,
            "LOG_JSON": "false",
            "PORTAL_SESSION_SECRET": "metrics-test-session-secret-0123456789",
            "PORTAL_KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "PORTAL_SIGN_IN_FAILURES": "1",
            "FORWARDED_ALLOW_IPS": PROXY,
            **{f"{name.upper()}_URL": url for name, url in urls.items()},
        }
        started = group.start(PORTAL, port=free_port(), env=portal_env, log_dir=tmp_path / "logs")
        clients[PORTAL] = httpx.AsyncClient(
            base_url=started.url,
            transport=httpx.AsyncHTTPTransport(local_address=PROXY),
            timeout=30,
        )
        await asyncio.to_thread(group.wait_healthy, timeout=120)
        yield clients
    finally:
        for client in clients.values():
            await client.aclose()
        await asyncio.to_thread(group.stop)


def credit_code() -> str:
    body = f"91{REGION}{uuid.uuid4().int % 10**9:09d}"
    return body + uscc.calc_check_digit(body)


async def created(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    answer: dict[str, Any] = response.json()
    return answer


async def drive_the_event_path(
    svc: dict[str, httpx.AsyncClient], receiver: WebhookReceiver
) -> None:
    registry, ingest, rules, notify = (svc[name] for name in EVENT_SERVICES)
    enterprises = [
        await created(
            registry,
            "/v1/enterprises",
            {
                "name": f"指标短剧{i}",
                "credit_code": credit_code(),
                "region_code": REGION,
                "kind": "production_company",
            },
        )
        for i in range(5)
    ]
    enterprise_id = enterprises[0]["id"]
    await created(
        registry,
        "/v1/productions",
        {
            "enterprise_id": enterprise_id,
            "title": "指标",
            "region_code": REGION,
            "content_status": "approved",
        },
    )

    async def subscribed() -> bool:  # once notify has heard of the enterprise
        response = await notify.post(
            "/v1/subscriptions",
            json={
                "enterprise_id": enterprise_id,
                "channel": "webhook",
                "url": receiver.url,
                "events": ["eligibility.changed"],
            },
        )
        return response.status_code == 201

    await eventually(subscribed, timeout=30, interval=0.5)
    policy_id = f"metrics-{uuid.uuid4().hex[:8]}"
    await created(
        ingest,
        "/v1/policies",
        {
            "id": policy_id,
            "title": {"zh": "指标", "en": "Metrics"},
            "issuer": {"name": "Yangpu", "level": "district", "region_code": REGION},
            "sources": [{"fact": "F-YP-05"}],
            "effective": {"from": "2024-06-25"},
            "subject": "production",
            "criteria": {"field": "production.region_code", "op": "within", "value": [REGION]},
            "benefits": [{"id": "r", "kind": "reward", "basis": "up_to", "max_amount_cny": 1000}],
        },
    )
    await eventually(
        lambda: [r for r in receiver.requests if policy_id.encode() in r.body], timeout=60
    )
    reads = [
        (registry, "/v1/enterprises"),
        (ingest, "/v1/policies"),
        (rules, f"/v1/eligibility?enterprise_id={enterprise_id}"),
        (notify, "/v1/subscriptions"),
        (notify, "/v1/deliveries"),
    ]
    for _ in range(10):  # some load on every service, refused requests among it
        answers = await asyncio.gather(*(client.get(path) for client, path in reads))
        assert [a.status_code for a in answers] == [200] * len(reads)
        assert (await ingest.get("/v1/policies/no-such-policy")).status_code == 404
        assert (await rules.get("/v1/eligibility")).status_code == 400  # names no one


async def drive_the_portal(portal: httpx.AsyncClient) -> None:
    """A sign-in page, refused sign-ins and a 404, from two clients behind one proxy:
    the per-address limit (one failure here) stops the client that failed, not the
    other, so ``reelpolicy-portal serve`` took the address from X-Forwarded-For."""
    first, second = ({"X-Forwarded-For": address} for address in ("203.0.113.7", "203.0.113.8"))
    page = await portal.get("/sign-in", headers=first)
    assert page.status_code == 200, page.text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert token, "the sign-in page has no CSRF token"
    form = {"api_key": "rp_not_a_key_0123456789", "csrf_token": token[1]}
    assert (await portal.post("/sign-in", data=form, headers=first)).status_code == 401
    assert (await portal.post("/sign-in", data=form, headers=first)).status_code == 429
    assert (await portal.post("/sign-in", data=form, headers=second)).status_code == 401
    assert (await portal.get("/no-such-page", headers=first)).status_code == 404


def samples(text: str) -> Samples:
    found: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def value(found: Samples, name: str, **labels: str) -> float | None:
    for sample_labels, sample_value in found.get(name, []):
        if labels.items() <= sample_labels.items():
            return float(sample_value)
    return None


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    return response.text


def test_the_portal_is_selected_only_for_series_it_has() -> None:
    """The portal's /metrics lists the event path's families too (every process defines
    them), so the exposure check below would pass a query that selects the portal for
    one of them, and the panel or alert would show nothing (or a 0) for it."""
    wrong = [
        f"{use.name} ({use.where})"
        for use in used_series()
        if PORTAL in use.jobs and not PORTAL_SERIES.fullmatch(use.name)
    ]
    assert not wrong, "selects the portal, which has none of it:\n" + "\n".join(wrong)


async def test_every_series_the_rules_and_dashboard_use_is_exposed(
    platform: dict[str, httpx.AsyncClient],
) -> None:
    uses = used_series()
    assert len({use.name for use in uses}) > 20
    assert {use.name for use in uses if PORTAL in use.jobs} >= {
        "http_requests_total",
        "http_request_duration_highr_seconds_bucket",
        "process_cpu_seconds_total",
        "reelpolicy_task_up",
        "reelpolicy_task_heartbeat_timestamp_seconds",
        "reelpolicy_portal_sign_ins_total",
    }
    receiver = WebhookReceiver()
    try:
        await drive_the_event_path(platform, receiver)
        await drive_the_portal(platform[PORTAL])

        async def gauges_set() -> dict[str, Samples] | None:
            pages = {name: samples(await scrape(c)) for name, c in platform.items()}
            notify = pages["notify"]
            ready = (
                value(notify, "reelpolicy_subscriptions_disabled", channel="webhook") is not None
                and value(notify, "reelpolicy_dead_letters_waiting", topic=topics.ELIGIBILITY)
                is not None
                and value(notify, "reelpolicy_consumer_lag", group="reelpolicy-notify") is not None
            )
            return pages if ready else None

        await eventually(gauges_set, timeout=60, interval=1)
        texts = {name: await scrape(client) for name, client in platform.items()}
    finally:
        receiver.close()

    exposed = {name: exposed_names(text) for name, text in texts.items()}
    missing = []
    for use in uses:
        having = {job for job in use.jobs if use.name in exposed[job]}
        if (having != use.jobs) if use.every else not having:
            lacking = sorted(use.jobs - having)
            missing.append(f"{use.name} ({use.where}): not on {', '.join(lacking)}")
        elif PORTAL in use.jobs and PORTAL not in having:
            missing.append(f"{use.name} ({use.where}): selects the portal, not on it")
    assert not missing, "\n".join(missing)

    found = {name: samples(text) for name, text in texts.items()}
    for name in SERVICES:  # each process counts its own requests
        statuses = {s["status"] for s, _ in found[name].get("http_requests_total", [])}
        assert "2xx" in statuses, (name, statuses)
    for name in EVENT_SERVICES:
        assert value(found[name], "reelpolicy_task_up", task="outbox-relay") == 1, name
    assert {"4xx"} <= {s["status"] for s, _ in found["ingest"]["http_requests_total"]}
    portal = found[PORTAL]
    refused = value(portal, "http_requests_total", handler="/sign-in", method="POST", status="4xx")
    assert refused == 3
    assert value(portal, "reelpolicy_portal_sign_ins_total", outcome="refused") == 2
    assert value(portal, "reelpolicy_portal_sign_ins_total", outcome="limited") == 1
    assert value(portal, "reelpolicy_portal_sign_ins_total", outcome="signed_in") == 0
    assert value(portal, "reelpolicy_task_up", task="session-pruner") == 1
    assert value(portal, "reelpolicy_task_heartbeat_interval_seconds", task="session-pruner")
    # The loops that set the gauges run in the services that need them.
    for name, task in [
        ("notify", "notify-worker"),
        ("notify", "notify-gauges"),
        ("notify", "dead-letter-gauge"),
        ("rules", "dead-letter-gauge"),
        ("rules", "rules-scheduler"),
        ("ingest", "processed-events-pruner"),
        ("notify", "processed-events-pruner"),
        ("rules", "processed-events-pruner"),
    ]:
        assert value(found[name], "reelpolicy_task_up", task=task) == 1, (name, task)
        assert value(found[name], "reelpolicy_task_heartbeat_interval_seconds", task=task)
    assert value(found["rules"], "reelpolicy_dead_letters_waiting", topic=topics.REGISTRY) == 0
    attempts = value(
        found["notify"],
        "reelpolicy_delivery_attempts_total",
        channel="webhook",
        outcome="succeeded",
    )
    assert attempts is not None
    assert attempts >= 1
    assert value(found["rules"], "reelpolicy_evaluation_seconds_count", mode="bulk")
