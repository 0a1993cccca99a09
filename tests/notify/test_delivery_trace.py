"""What a delivery's CLIENT span records of the webhook URL: no credentials, no query."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from reelpolicy_notify.domain.records import ClaimedDelivery, SendResult
from reelpolicy_notify.domain.signing import new_secret
from reelpolicy_notify.handlers.delivery_attempts import (
    DeliveryPolicy,
    attempt_delivery,
    traced_url,
)


def install_exporter() -> InMemorySpanExporter:
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


class Webhooks:
    def __init__(self) -> None:
        self.urls: list[str] = []

    async def post(self, url: str, *, body: bytes, headers: dict[str, str]) -> SendResult:
        self.urls.append(url)
        return SendResult(204, 3)


class Unused:
    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"not expected: {name}")


async def test_the_delivery_span_records_the_url_without_credentials_or_query() -> None:
    exporter = install_exporter()
    url = "https://hook-user:hook-pass@hooks.example.com:8443/in/abc?token=x&sig=y#frag"
    claimed = ClaimedDelivery(
        id=uuid.uuid4(),
        subscription_id=uuid.uuid4(),
        enterprise_id="e1",
        event_type="eligibility.changed",
        body={"type": "eligibility.changed"},
        attempt_count=0,
        total_attempts=0,
        traceparent=None,
        channel="webhook",
        url=url,
        email=None,
        enabled=True,
        secrets=(new_secret(),),
        digest_window_seconds=None,
        failing_since=None,
    )
    webhooks = Webhooks()
    await attempt_delivery(
        claimed=claimed,
        queue=Unused(),  # type: ignore[arg-type]
        webhooks=webhooks,
        emails=Unused(),  # type: ignore[arg-type]
        policy=DeliveryPolicy(schedule=(5.0,), jitter=0.0, disable_after_seconds=3600.0),
    )
    assert webhooks.urls == [url], "the request itself goes to the URL as stored"
    [span] = [s for s in exporter.get_finished_spans() if s.name.startswith("webhook deliver")]
    attributes = dict(span.attributes or {})
    assert attributes["url.full"] == "https://hooks.example.com:8443/in/abc"
    recorded = repr(attributes)
    for secret in ("token", "sig=", "hook-user", "hook-pass", "frag"):
        assert secret not in recorded


@pytest.mark.parametrize(
    ("url", "traced"),
    [
        ("http://u:p@[2001:db8::1]:8080/x?token=x", "http://[2001:db8::1]:8080/x"),
        ("https://HOOKS.example.com/a;b?c", "https://hooks.example.com/a;b"),
        ("https://user@h.example/", "https://h.example/"),
        ("http://h.example:99999/", ""),  # no valid port: not a URL anything was sent to
        (None, ""),
    ],
)
def test_traced_url_keeps_scheme_host_port_and_path_only(url: str | None, traced: str) -> None:
    assert traced_url(url) == traced
