"""Access control: for every endpoint, a company key for enterprise A gets nothing of B.

The four services run in this process (fresh databases, the real broker). An
operator creates enterprises A and B, a production and a subscription for each, a
policy both are eligible for, and a company key for A through the registry (the key
reaches the other services as an event). Then every ``/v1`` operation in every
service's OpenAPI document is called with A's key, aimed at B's records. Each call
must fail with 403/404 or answer without a trace of B, and B's records must be
unchanged afterwards. A positive control shows the same reads *do* reveal B to the
operator, so the check can fail.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest
from stdnum.cn import uscc

from in_process_services import InProcessService, four_services
from reelpolicy_devstack.servers import EmbeddedPostgres
from service_harness import eventually
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.servers

REGION = "310110"


def credit_code() -> str:
    body = f"91{REGION}{uuid.uuid4().int % 10**9:09d}"
    return body + uscc.calc_check_digit(body)


async def create(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = await client.post(path, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def request_for(method: str, path: str, params: list[str], ids: dict[str, str]) -> dict[str, Any]:
    """The request that aims ``method path`` at B's records."""
    for name in params:
        if "{" + name + "}" in path:  # a path parameter we have no id for fails here
            path = path.replace("{" + name + "}", ids[name])
    query = {
        name: ids[name]
        for name in ("enterprise_id", "production_id", "subscription_id")
        if name in params and "{" + name + "}" not in path
    }
    bodies: dict[str, Any] = {
        "/v1/enterprises": {
            "name": "x",
            "credit_code": credit_code(),
            "region_code": REGION,
            "kind": "production_company",
        },
        "/v1/productions": {"enterprise_id": ids["enterprise_id"], "title": "hijack"},
        "/v1/subscriptions": {
            "enterprise_id": ids["enterprise_id"],
            "channel": "email",
            "email": "x@example.com",
            "events": ["eligibility.changed"],
        },
        "/v1/api-keys": {"role": "company", "enterprise_id": ids["enterprise_id"]},
        "/v1/simulate": {"document": ids["policy_document"]},
        "/v1/policies": ids["policy_document"],
    }
    request: dict[str, Any] = {"method": method, "url": path, "params": query}
    if method == "PATCH":
        request["json"] = {"name": "hijacked", "title": "hijacked", "url": "http://127.0.0.1:9/x"}
    elif method == "POST" and path == "/v1/import":
        row = {"type": "production", "enterprise_id": ids["enterprise_id"], "title": "hijack"}
        request["content"] = json.dumps(row).encode() + b"\n"
        request["headers"] = {"Content-Type": "application/x-ndjson"}
    elif method == "POST" and path in bodies:
        request["json"] = bodies[path]
    elif method == "POST":
        request["json"] = {}
    return request


RECORD_PARAMS = (
    "enterprise_id",
    "production_id",
    "subscription_id",
    "delivery_id",
    "key_id",
    "subject_id",
)


def aims_at_b(path: str) -> bool:
    return any("{" + name + "}" in path for name in RECORD_PARAMS)


async def snapshot_of_b(svc: dict[str, InProcessService], ids: dict[str, str]) -> list[Any]:
    reg, notify = svc["registry"].client, svc["notify"].client
    return [
        (await reg.get(f"/v1/enterprises/{ids['enterprise_id']}")).json(),
        (await reg.get(f"/v1/productions/{ids['production_id']}")).json(),
        (await notify.get(f"/v1/subscriptions/{ids['subscription_id']}")).json(),
        (await reg.get("/v1/productions", params={"enterprise_id": ids["enterprise_id"]})).json(),
    ]


async def test_a_company_key_gets_nothing_of_another_enterprise(
    embedded_postgres: EmbeddedPostgres, bootstrap_servers: str
) -> None:
    receiver = WebhookReceiver()
    try:
        async with four_services(embedded_postgres.uri(), bootstrap_servers) as svc:
            reg, ingest, notify = (svc[n].client for n in ("registry", "ingest", "notify"))
            policy = {
                "id": f"acl-{uuid.uuid4().hex[:8]}",
                "title": {"zh": "测试", "en": "ACL test"},
                "issuer": {"name": "Yangpu", "level": "district", "region_code": REGION},
                "sources": [{"fact": "F-YP-05"}],
                "effective": {"from": "2024-06-25"},
                "subject": "production",
                "criteria": {"field": "production.region_code", "op": "within", "value": [REGION]},
                "benefits": [
                    {"id": "r", "kind": "reward", "basis": "up_to", "max_amount_cny": 500}
                ],
            }
            await create(ingest, "/v1/policies", policy)
            ent: dict[str, dict[str, Any]] = {}
            for name in ("A", "B"):
                e = await create(
                    reg,
                    "/v1/enterprises",
                    {
                        "name": f"企业{name}",
                        "credit_code": credit_code(),
                        "region_code": REGION,
                        "kind": "production_company",
                    },
                )
                p = await create(
                    reg,
                    "/v1/productions",
                    {
                        "enterprise_id": e["id"],
                        "title": f"剧{name}",
                        "region_code": REGION,
                        "content_status": "approved",
                    },
                )
                s = await create(
                    notify,
                    "/v1/subscriptions",
                    {
                        "enterprise_id": e["id"],
                        "channel": "webhook",
                        "url": receiver.url,
                        "events": ["eligibility.changed"],
                    },
                )
                ent[name] = {"enterprise": e, "production": p, "subscription": s}

            def company_key(name: str) -> dict[str, Any]:
                return {
                    "role": "company",
                    "enterprise_id": ent[name]["enterprise"]["id"],
                    "label": name,
                }

            b_key = await create(reg, "/v1/api-keys", company_key("B"))
            a_key = (await create(reg, "/v1/api-keys", company_key("A")))["key"]

            async def b_has_a_delivery() -> Any:
                found = await notify.get(
                    "/v1/deliveries", params={"subscription_id": ent["B"]["subscription"]["id"]}
                )
                return found.json()["items"]

            [b_delivery, *_] = await eventually(b_has_a_delivery, timeout=60)

            async def a_key_works_everywhere() -> bool:
                codes = []
                for name, path in (
                    ("ingest", "/v1/policies"),
                    ("rules", "/v1/eligibility"),
                    ("notify", "/v1/subscriptions"),
                ):
                    async with svc[name].as_key(a_key) as client:
                        params = (
                            {"enterprise_id": ent["A"]["enterprise"]["id"]}
                            if name == "rules"
                            else {}
                        )
                        codes.append((await client.get(path, params=params)).status_code)
                return codes == [200, 200, 200]

            await eventually(a_key_works_everywhere, timeout=30)

            ids = {
                "enterprise_id": ent["B"]["enterprise"]["id"],
                "production_id": ent["B"]["production"]["id"],
                "subject_id": ent["B"]["production"]["id"],
                "subscription_id": ent["B"]["subscription"]["id"],
                "delivery_id": b_delivery["id"],
                "key_id": b_key["key_id"],
                "policy_id": policy["id"],
                "version": "1",
                "policy_document": policy,  # type: ignore[dict-item]
            }
            secrets_of_b = {
                v for k, v in ids.items() if k not in ("policy_id", "version", "policy_document")
            }
            before = await snapshot_of_b(svc, ids)

            checked = 0
            for name, service in svc.items():
                for path, operations in service.app.openapi()["paths"].items():
                    if not path.startswith("/v1"):
                        continue
                    for method, operation in operations.items():
                        params = [p["name"] for p in operation.get("parameters", [])]
                        request = request_for(method.upper(), path, params, ids)
                        async with service.as_key(a_key) as client:
                            response = await client.request(**request)
                        where = f"{name} {method.upper()} {path} -> {response.status_code}"
                        assert response.status_code in (200, 201, 202, 204, 403, 404, 409, 422), (
                            where
                        )
                        sent = str(request)  # an id the caller sent may be echoed back
                        leaked = [s for s in secrets_of_b if s in response.text and s not in sent]
                        assert not leaked, f"{where} leaks {leaked}: {response.text[:300]}"
                        if aims_at_b(path) and response.status_code < 300:
                            pytest.fail(f"{where}: A reached B's record")
                        checked += 1
            assert checked >= 30  # the four OpenAPI documents were really walked (34 today)

            assert await snapshot_of_b(svc, ids) == before  # nothing of B changed

            # Positive control: the operator does see B through the same reads.
            for name, path in (
                ("registry", f"/v1/enterprises/{ids['enterprise_id']}"),
                ("rules", f"/v1/eligibility?enterprise_id={ids['enterprise_id']}"),
                ("notify", f"/v1/deliveries/{ids['delivery_id']}"),
            ):
                seen = await svc[name].client.get(path)
                assert seen.status_code == 200, path
                assert any(s in seen.text for s in secrets_of_b), path
    finally:
        receiver.close()
