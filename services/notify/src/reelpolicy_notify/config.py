"""Notify settings (environment variables; see README). Every setting has a default."""

from __future__ import annotations

from pydantic import Field

from reelpolicy_common.settings import SecretKeySettings

SVIX_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"


class Settings(SecretKeySettings):
    service_name: str = "notify"
    http_port: int = Field(default=8004, ge=1, le=65535)
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = "reelpolicy@localhost"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    notify_allow_private_targets: bool = Field(
        default=False, description="Allow webhook URLs on private/loopback/link-local addresses."
    )
    notify_allowed_hosts: str = Field(
        default="", description="Comma-separated hosts allowed even when private (dev)."
    )
    notify_retry_schedule: str = Field(
        default=SVIX_SCHEDULE,
        description="Seconds before each attempt (comma-separated); the first is usually 0.",
    )
    notify_retry_jitter: float = Field(default=0.1, ge=0, le=1, description="± fraction.")
    notify_request_timeout_seconds: float = Field(default=15.0, gt=0)
    notify_disable_after_seconds: float = Field(
        default=5 * 24 * 3600, gt=0, description="Disable an endpoint failing everything this long."
    )
    notify_secret_overlap_seconds: float = Field(
        default=24 * 3600, ge=0, description="How long the previous secret still signs."
    )
    notify_response_body_limit: int = Field(default=1024, ge=0)
    notify_worker_batch: int = Field(default=200, ge=1)
    notify_worker_concurrency: int = Field(default=64, ge=1)
    notify_worker_max_idle_seconds: float = Field(default=30.0, gt=0)
    notify_deadline_scan_seconds: float = Field(default=3600.0, gt=0)

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        from reelpolicy_notify.domain.retries import parse_schedule

        return parse_schedule(self.notify_retry_schedule)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.notify_allowed_hosts.split(",") if h.strip()
        )
