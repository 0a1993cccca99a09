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
        default=1000, ge=0, description="Bulk changes up to this many carry full traces."
    )
    bulk_commit_rows: int = Field(
        default=20_000, ge=0,
        description="A policy change's results are committed this many changes at a time"
        " (0: all in one transaction), so its first events are published while the rest"
        " are written; the projection stays locked throughout.",
    )  # fmt: skip
    simulate_sample_size: int = Field(default=20, ge=0, le=500)
    registry_batch_size: int = Field(
        default=100, ge=1,
        description="Registry events applied per transaction (1 = one transaction each).",
    )  # fmt: skip
    policy_fetch_max_wait_ms: int = Field(
        default=500, ge=0,
        description="How long a fetch of the policy topic may wait for records: policies"
        " change rarely and a bulk run takes seconds, so this consumer polls less than the"
        " registry one (CONSUMER_FETCH_MAX_WAIT_MS). On the embedded broker an idle"
        " consumer's fetches at 30 ms cost it 2-5% of a core, at 500 ms 0.2-0.6%, and a"
        " record waited a median 55 ms at 500 ms (2026-12-03).",
    )  # fmt: skip
