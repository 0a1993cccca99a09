"""End to end: the four services as separate processes on the embedded servers.

registry takes an enterprise and a production over HTTP, ingest a policy; rules
consumes both and emits an eligibility change; notify consumes it and POSTs a
signed webhook to a subscriber. Everything crosses real Kafka and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from standardwebhooks import Webhook
from stdnum.cn import uscc

from reelpolicy_devstack.servers import (
    EmbeddedBroker,
    EmbeddedPostgres,
    database_uri,
    ensure_database,
    free_port,
)
from reelpolicy_devstack.services import SERVICES, ServiceGroup, run
from service_harness import SEALING_KEYS, SECRET_KEY, eventually
from webhook_receiver import Received, WebhookReceiver

pytestmark = [pytest.mark.servers, pytest.mark.e2e]

OPERATOR_KEY = "rp_e2e_operator_key_0123456789"


def credit_code(serial: str) -> str:
    body = f"91310110{serial:0>9}"
    return body + uscc.calc_check_digit(body)


@pytest.fixture(scope="module")
def platform(
    embedded_postgres: EmbeddedPostgres,
    embedded_broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("e2e-logs")
    group = ServiceGroup()
    urls: dict[str, str] = {}
    suffix = tmp_path_factory.getbasetemp().name[-6:].replace("-", "_")
    try:
        for name in SERVICES:
            db = f"e2e_{name}_{suffix}"
            asyncio.run(ensure_database(embedded_postgres.uri(), db, fresh=True))
            env = {
                "SERVICE_NAME": name,
                "DATABASE_URL": database_uri(embedded_postgres.uri(), db),
                "KAFKA_BOOTSTRAP_SERVERS": embedded_broker.bootstrap_servers,
                "KAFKA_CONSUMER_GROUP": f"e2e-{name}-{suffix}",
                "REELPOLICY_SECRET_KEY": SECRET_KEY,
                "NOTIFY_SEALING_KEYS": SEALING_KEYS,
                "NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
                "NOTIFY_RETRY_SCHEDULE": "0,1,2",
                "LOG_JSON": "true",
            }
            run(name, "migrate", env=env)
            if name == "registry":
                run(
                    name, "api-keys", "create", "--role", "operator", "--key", OPERATOR_KEY, env=env
                )
            proc = group.start(name, port=free_port(), env=env, log_dir=Path(logs))
            urls[name] = proc.url
        group.wait_healthy(timeout=90)
        yield urls
    finally:
        group.stop()


POLICY = {
    "id": "e2e-yangpu-production-award",
    "title": {"zh": "杨浦测试奖励", "en": "Yangpu test reward"},
    "issuer": {"name": "Yangpu District", "level": "district", "region_code": "310110"},
    "sources": [{"fact": "F-YP-05"}],
    "effective": {"from": "2024-06-25"},
    "subject": "production",
    "criteria": {
        "all": [
            {"field": "production.region_code", "op": "within", "value": ["310110"]},
            {"field": "production.content_status", "op": "ne", "value": "taken_down"},
        ]
    },
    "benefits": [{"id": "reward", "kind": "reward", "basis": "up_to", "max_amount_cny": 2_000_000}],
}


async def test_a_policy_and_a_production_end_in_a_signed_webhook(platform: dict[str, str]) -> None:
    receiver = WebhookReceiver()
    auth = {"Authorization": f"Bearer {OPERATOR_KEY}"}
    try:
        async with httpx.AsyncClient(headers=auth, timeout=10) as http:

            async def operator_key_known_everywhere() -> bool:
                codes = [
                    (await http.get(f"{platform[n]}/v1/{path}")).status_code
                    for n, path in (("ingest", "policies"), ("notify", "subscriptions"))
                ]
                return codes == [200, 200]

            await eventually(operator_key_known_everywhere, timeout=60)

            policy = await http.post(f"{platform['ingest']}/v1/policies", json=POLICY)
            assert policy.status_code == 201, policy.text

            enterprise = await http.post(
                f"{platform['registry']}/v1/enterprises",
                json={
                    "name": "杨浦短剧有限公司",
                    "credit_code": credit_code("E2E000001"),
                    "region_code": "310110",
                    "kind": "production_company",
                    "established_on": "2025-03-01",
                },
            )
            assert enterprise.status_code == 201, enterprise.text
            enterprise_id = enterprise.json()["id"]

            subscription = await http.post(
                f"{platform['notify']}/v1/subscriptions",
                json={
                    "enterprise_id": enterprise_id,
                    "channel": "webhook",
                    "url": receiver.url,
                    "events": ["eligibility.changed"],
                },
            )
            assert subscription.status_code == 201, subscription.text
            secret = subscription.json()["secret"]

            production = await http.post(
                f"{platform['registry']}/v1/productions",
                json={
                    "enterprise_id": enterprise_id,
                    "title": "弄堂里的春天",
                    "region_code": "310110",
                    "content_status": "approved",
                    "platforms": ["douyin"],
                },
            )
            assert production.status_code == 201, production.text
            production_id = production.json()["id"]

            def ours() -> list[Received]:
                # The session broker also carries other tests' policies: keep ours.
                return [r for r in receiver.requests if POLICY["id"].encode() in r.body]

            await eventually(ours, timeout=90)
            hook = ours()[0]
            Webhook(secret).verify(hook.body, hook.headers)  # raises when the signature is bad
            body = json.loads(hook.body)
            assert body["type"] == "eligibility.changed"
            assert body["data"]["subject_id"] == production_id
            assert body["data"]["policy_id"] == POLICY["id"]
            assert body["data"]["status"] == "eligible"
            assert body["data"]["amount_cny"] == 2_000_000

            eligibility = await http.get(
                f"{platform['rules']}/v1/eligibility", params={"enterprise_id": enterprise_id}
            )
            items = [i for i in eligibility.json()["items"] if i["policy_id"] == POLICY["id"]]
            assert [(i["subject_id"], i["status"]) for i in items] == [(production_id, "eligible")]
            await asyncio.sleep(2)
            assert len(ours()) == 1  # once, not again
    finally:
        receiver.close()
