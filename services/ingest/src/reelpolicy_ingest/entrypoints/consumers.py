"""Ingest consumes the registry topic only to keep its API keys in step."""

from __future__ import annotations

from reelpolicy_common.auth import api_key_projection
from reelpolicy_common.consumer import subscribe_reliably
from reelpolicy_contracts import topics
from reelpolicy_ingest.bootstrap import Ingest

CONSUMER = "ingest.api-keys"


def register_consumers(ingest: Ingest) -> None:
    runtime = ingest.runtime
    subscribe_reliably(
        runtime.broker,
        topic_names=[topics.REGISTRY],
        group_id=runtime.settings.consumer_group,
        consumer=CONSUMER,
        handler=api_key_projection(runtime, consumer=CONSUMER),
        retry=runtime.retry_policy,
        fetch_max_wait_ms=runtime.settings.consumer_fetch_max_wait_ms,
        description="API keys issued and revoked by the registry.",
    )
