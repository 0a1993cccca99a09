"""One trace from a policy change to a webhook, across all four services.

The four apps run in this process (each with its own database, all on the real
embedded broker) so one in-memory span exporter sees every span: the ingest HTTP
request, the outbox publish, rules' consumption and its eligibility publish,
notify's consumption and the outbound webhook request must form one parent/child
chain, and the webhook must carry that trace's ``traceparent``.
"""

from __future__ import annotations

import uuid

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from in_process_services import (
    add_enterprise_and_production,
    four_services,
    knows_a_production,
    region_policy,
)
from reelpolicy_devstack.servers import EmbeddedPostgres
from service_harness import eventually
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.servers


def install_exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


def chain_to_root(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[ReadableSpan]:
    chain = [span]
    while chain[-1].parent is not None and chain[-1].parent.span_id in by_id:
        chain.append(by_id[chain[-1].parent.span_id])
    return chain


async def test_policy_change_to_webhook_is_one_trace(
    embedded_postgres: EmbeddedPostgres, bootstrap_servers: str
) -> None:
    exporter = install_exporter()
    receiver = WebhookReceiver()
    region = "310110"
    policy_id = f"trace-{uuid.uuid4().hex[:8]}"
    try:
        async with four_services(embedded_postgres.uri(), bootstrap_servers) as svc:
            registry, ingest, notify = (svc[n].client for n in ("registry", "ingest", "notify"))
            enterprise_id, _ = await add_enterprise_and_production(
                registry, region=region, title="追踪"
            )
            await eventually(lambda: knows_a_production(svc["rules"]), timeout=30)
            subscription = await notify.post(
                "/v1/subscriptions",
                json={
                    "enterprise_id": enterprise_id,
                    "channel": "webhook",
                    "url": receiver.url,
                    "events": ["eligibility.changed"],
                },
            )
            assert subscription.status_code == 201, subscription.text

            exporter.clear()
            published = await ingest.post(
                "/v1/policies",
                json=region_policy(policy_id, region=region, title_zh="追踪", title_en="Trace"),
            )
            assert published.status_code == 201, published.text
            await eventually(
                lambda: [r for r in receiver.requests if policy_id.encode() in r.body], timeout=60
            )

        spans = exporter.get_finished_spans()
        by_id = {s.context.span_id: s for s in spans}
        [server] = [
            s
            for s in spans
            if s.kind is SpanKind.SERVER and "/v1/policies" in s.name and "POST" in s.name
        ]
        trace_id = server.context.trace_id
        [hook] = [r for r in receiver.requests if policy_id.encode() in r.body]
        traceparent = hook.headers["traceparent"]
        assert traceparent.split("-")[1] == f"{trace_id:032x}"

        [webhook] = [
            s for s in spans if s.kind is SpanKind.CLIENT and s.context.trace_id == trace_id
        ]
        chain = chain_to_root(webhook, by_id)
        assert chain[-1] is server, [s.name for s in chain]
        kinds = [(s.kind, s.name) for s in reversed(chain)]
        consumer_topics = [name for kind, name in kinds if kind is SpanKind.CONSUMER]
        producer_topics = [name for kind, name in kinds if kind is SpanKind.PRODUCER]
        assert consumer_topics == [
            "reelpolicy.policy.v1 process",
            "reelpolicy.eligibility.v1 process",
        ]
        assert producer_topics == [
            "reelpolicy.policy.v1 publish",
            "reelpolicy.eligibility.v1 publish",
        ]
        assert any(
            s.name == "rules.evaluate" or "evaluate" in s.name
            for s in spans
            if s.context.trace_id == trace_id
        )
    finally:
        receiver.close()
