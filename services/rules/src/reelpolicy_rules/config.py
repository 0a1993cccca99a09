"""Rules settings (environment variables; every one has a default but the shared ones)."""

from __future__ import annotations

from pydantic import Field

from reelpolicy_common.settings import SecretKeySettings


class Settings(SecretKeySettings):
    service_name: str = "rules"
    http_port: int = Field(default=8003, ge=1, le=65535)
    timezone: str = Field(default="Asia/Shanghai", description="Where a day begins for policies.")
    clock_poll_seconds: float = Field(
        default=30.0, gt=0, description="How often the scheduler checks for a new day."
    )
    bulk_trace_limit: int = Field(
        default=1000,
        ge=0,
        description="Policy runs with up to this many changes carry full traces.",
    )
    bulk_commit_rows: int = Field(
        default=20_000,
        ge=0,
        description="A policy change's results are committed this many changes at a time"
        " (0: all in one transaction), so its first events are published while the rest"
        " are written; the projection stays locked throughout.",
    )
    simulate_sample_size: int = Field(default=20, ge=0, le=500)
    registry_batch_size: int = Field(
        default=100,
        ge=1,
        description="Registry events applied per transaction (1 = one transaction each).",
    )
    policy_fetch_max_wait_ms: int = Field(
        default=500,
        ge=0,
        description="How long a fetch of the policy topic may wait for records: policies"
        " change rarely and a policy run takes seconds, so this consumer polls less often"
        " than the registry one (CONSUMER_FETCH_MAX_WAIT_MS), which keeps an idle"
        " consumer's fetches cheap at the cost of a policy event waiting a little longer.",
    )
