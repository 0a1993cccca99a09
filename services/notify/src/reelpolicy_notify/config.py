"""Notify settings (environment variables; see README). Every setting but the secrets
has a default."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from reelpolicy_common.settings import PLACEHOLDER_SECRETS, SecretKeySettings, require_secret
from reelpolicy_notify.adapters.secret_box import SecretBox, parse_key_ring
from reelpolicy_notify.domain.retries import parse_schedule

SVIX_SCHEDULE = "0,5,300,1800,7200,18000,36000,36000"


def parse_ports(value: str) -> frozenset[int]:
    """Comma-separated TCP ports; ValueError names the first that is not one."""
    ports: set[int] = set()
    for item in (part.strip() for part in value.split(",")):
        if not item:
            continue
        if not item.isdigit() or not 1 <= int(item) <= 65535:
            raise ValueError(f"NOTIFY_ALLOWED_PORTS: {item!r} is not a port (1-65535)")
        ports.add(int(item))
    return frozenset(ports)


class Settings(SecretKeySettings):
    # A refused NOTIFY_SEALING_KEYS must not print its key material in the error.
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    service_name: str = "notify"
    http_port: int = Field(default=8004, ge=1, le=65535)
    smtp_host: str = "localhost"
    smtp_port: int = Field(default=1025, ge=1, le=65535)
    smtp_from: str = "reelpolicy@localhost"
    smtp_timeout_seconds: float = Field(default=15.0, gt=0)
    smtp_username: str | None = Field(default=None, description="Log in to the relay as.")
    smtp_password: SecretStr | None = Field(
        default=None, description="The relay login's password (with SMTP_USERNAME)."
    )
    smtp_starttls: bool = Field(
        default=False,
        description="Require STARTTLS (usually port 587); false upgrades only when offered.",
    )
    smtp_tls: bool = Field(
        default=False, description="Implicit TLS from the first byte (usually port 465)."
    )
    smtp_ca_file: str | None = Field(
        default=None,
        description="CA bundle (PEM) that verifies the relay's certificate instead of the"
        " system's (a private CA; the tests' self-signed one).",
    )
    notify_public_base_url: str = Field(
        default="http://127.0.0.1:8004",
        description="Where recipients reach notify: e-mail unsubscribe links start with it.",
    )
    notify_allow_private_targets: bool = Field(
        default=False, description="Allow webhook URLs on private/loopback/link-local addresses."
    )
    notify_allowed_hosts: str = Field(
        default="", description="Comma-separated hosts allowed even when private (dev)."
    )
    notify_allowed_ports: str = Field(
        default="80,443,8080,8443",
        description="Comma-separated ports webhook URLs may use"
        " (NOTIFY_ALLOW_PRIVATE_TARGETS=true allows every port).",
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
    max_subscriptions_per_company: int = Field(
        default=100,
        ge=0,
        description="Subscriptions a company key may have for its enterprise (409 beyond);"
        " operators are not limited.",
    )
    notify_response_body_limit: int = Field(default=1024, ge=0)
    notify_worker_batch: int = Field(default=200, ge=1)
    notify_worker_concurrency: int = Field(default=64, ge=1)
    notify_worker_max_idle_seconds: float = Field(default=30.0, gt=0)
    notify_deadline_scan_seconds: float = Field(default=3600.0, gt=0)
    notify_sealing_keys: SecretStr = Field(
        description="Key ring sealing webhook signing secrets at rest: comma-separated"
        " <kid>:<base64url of 32 random bytes>; the first seals, all open. Never a default;"
        " apart from REELPOLICY_SECRET_KEY. Rotation: deploy/runbook.md."
    )
    notify_legacy_secret_key: SecretStr | None = Field(
        default=None,
        description="The REELPOLICY_SECRET_KEY that sealed secrets before key rings (v1);"
        " set it only until `reelpolicy-notify secrets reseal` has moved them to the ring.",
    )

    @field_validator("notify_sealing_keys")
    @classmethod
    def _valid_key_ring(cls, value: SecretStr) -> SecretStr:
        raw = value.get_secret_value()
        if raw.strip().lower() in PLACEHOLDER_SECRETS:
            raise ValueError(
                "NOTIFY_SEALING_KEYS must be set to <kid>:<base64url of 32 random bytes>"
            )
        parse_key_ring(raw)
        return value

    @field_validator("notify_allowed_ports")
    @classmethod
    def _valid_ports(cls, value: str) -> str:
        parse_ports(value)
        return value

    @field_validator("notify_legacy_secret_key")
    @classmethod
    def _real_legacy_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return None if value is None else require_secret(value, name="NOTIFY_LEGACY_SECRET_KEY")

    @model_validator(mode="after")
    def _one_smtp_tls_mode_and_a_whole_login(self) -> Settings:
        if self.smtp_starttls and self.smtp_tls:
            raise ValueError(
                "SMTP_STARTTLS and SMTP_TLS exclude each other: STARTTLS upgrades a plain"
                " connection (port 587), SMTP_TLS is TLS from the start (port 465)"
            )
        if (self.smtp_username is None) != (self.smtp_password is None):
            raise ValueError("SMTP_USERNAME and SMTP_PASSWORD are set together or not at all")
        return self

    def secret_box(self) -> SecretBox:
        legacy = self.notify_legacy_secret_key
        return SecretBox(
            parse_key_ring(self.notify_sealing_keys.get_secret_value()),
            legacy_secret=None if legacy is None else legacy.get_secret_value(),
        )

    @property
    def retry_schedule(self) -> tuple[float, ...]:
        return parse_schedule(self.notify_retry_schedule)

    @property
    def allowed_ports(self) -> frozenset[int]:
        return parse_ports(self.notify_allowed_ports)

    @property
    def allowed_hosts(self) -> frozenset[str]:
        return frozenset(
            h.strip().lower() for h in self.notify_allowed_hosts.split(",") if h.strip()
        )
