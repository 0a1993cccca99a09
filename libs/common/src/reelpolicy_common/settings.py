"""Settings every service shares, read from the environment (pydantic-settings).

The names are plain (``DATABASE_URL``, ``KAFKA_BOOTSTRAP_SERVERS``, ``HTTP_PORT``...)
so compose and ``make up`` set them the same way; each service subclasses
:class:`ServiceSettings` for its own. Secrets have no usable default: a service
refuses to start with a missing or placeholder secret.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, FilePath, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from reelpolicy_contracts import topics

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "password", "dev"})


class ServiceSettings(BaseSettings):
    """Settings of one service process."""

    # a refused secret must not be echoed into logs by the validation error
    model_config = SettingsConfigDict(
        extra="ignore", case_sensitive=False, hide_input_in_errors=True
    )

    service_name: str = Field(description="Name used in logs, traces, the outbox producer.")
    database_url: str = Field(
        description="PostgreSQL DSN of this service's own database (postgresql://...)."
    )
    database_pool_min: int = Field(default=1, ge=1)
    database_pool_max: int = Field(default=10, ge=1)
    database_connect_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long opening a database connection may take."
    )
    database_command_timeout_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long one statement may wait for the database before it fails (a"
        " frozen server or a dead path that still accepts packets); 0: no limit. Bulk"
        " writes commit in chunks (20,000 rows) that take seconds, well within it.",
    )
    database_tcp_keepalive_seconds: int = Field(
        default=10,
        ge=1,
        description="Idle seconds before TCP keepalive probes a database connection; a path"
        " that stops answering fails after about three times this (TCP_USER_TIMEOUT too).",
    )
    kafka_bootstrap_servers: str = Field(default="127.0.0.1:9092")
    kafka_enable_idempotence: bool = Field(
        default=False,
        description="Idempotent producer; the embedded broker does not support it.",
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT",
        description="How every Kafka client of the service connects: TLS (SSL, SASL_SSL)"
        " and SASL authentication (SASL_*); see deploy/runbook.md, Kafka security settings.",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism; required with a SASL_* protocol."
    )
    kafka_sasl_username: str | None = Field(
        default=None, description="SASL user; required with a SASL_* protocol."
    )
    kafka_sasl_password: SecretStr | None = Field(
        default=None, description="SASL password; required with a SASL_* protocol."
    )
    kafka_ssl_ca_file: FilePath | None = Field(
        default=None,
        description="PEM file of the CA that signed the broker's certificate (SSL,"
        " SASL_SSL); unset: the system's CAs.",
    )
    kafka_consumer_group: str | None = Field(
        default=None, description="Consumer group id; defaults to reelpolicy-<service>."
    )
    kafka_max_poll_records: int = Field(default=500, ge=1)
    consumer_fetch_max_wait_ms: int = Field(
        default=30,
        ge=0,
        description="How long a fetch may wait for records; it paces polling. On the embedded"
        " broker a short wait means many small batches per second, and a longer one fewer,"
        " larger batches, which a busy consumer handles faster. Apache Kafka answers as soon"
        " as records arrive.",
    )
    auth_cache_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long a checked API key is remembered (0: never). A key written in"
        " this process takes effect at once; a revocation replicated from another process"
        " within this many seconds of reaching this service's table.",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description="Largest request body of a JSON call (413 beyond, before it is read"
        " further); a route with documents or files of its own has its own limit.",
    )
    rate_limit_per_minute: float = Field(
        default=1200,
        ge=0,
        description="Requests per minute one API key may make, sustained (429 with"
        " Retry-After beyond); 0 turns the limit off. Counted in each process.",
    )
    rate_limit_burst: int = Field(
        default=200, ge=1, description="Requests one API key may make at once above its rate."
    )
    rate_limit_operators: bool = Field(
        default=False, description="Whether operator keys are rate-limited too."
    )
    http_host: str = "127.0.0.1"
    http_port: int = Field(ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_json: bool = True
    otel_exporter_otlp_endpoint: str | None = Field(
        default=None, description="OTLP/HTTP endpoint; tracing is silent when unset."
    )
    consumer_max_attempts: int = Field(default=5, ge=1, description="Tries before the DLQ.")
    consumer_retry_initial_seconds: float = Field(default=0.2, ge=0)
    consumer_retry_max_seconds: float = Field(default=10.0, ge=0)
    consumer_outage_backoff_max_seconds: float = Field(
        default=30.0,
        gt=0,
        description="Longest wait between tries while a consumer waits out an infrastructure"
        " error (database or broker unreachable); such records are never dead-lettered.",
    )
    outbox_batch_size: int = Field(default=1000, ge=1)
    outbox_retention_seconds: float = Field(
        default=3600.0,
        ge=0,
        description="How long published outbox rows are kept (the dev stack re-queues the"
        " last hour into a fresh in-memory broker). 0 deletes a row as it is published,"
        " the cheapest mark: for a broker that keeps its topics (compose).",
    )
    processed_events_retention_seconds: float = Field(
        default=35 * 86400.0,
        ge=topics.EVENT_RETENTION_MS / 1000,
        description="How long a consumer remembers an event it handled (processed_events):"
        " older records are pruned hourly, and such an event, should it come back, is"
        " handled again. At least the topics' retention (7 days: a rewind of the offsets);"
        " the default also outlasts the dead letters' (30 days), since replaying a"
        " dead-letter topic sends its records to every consumer of the topic again.",
    )
    outbox_concurrency: int = Field(
        default=1,
        ge=1,
        description="Outbox lanes published at once (one connection each). 1 on the"
        " embedded broker: after a restart it gives concurrent batches to one partition"
        " overlapping offsets, and consumers skip records; 4 in compose (Apache Kafka).",
    )
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    task_restart_initial_seconds: float = Field(
        default=0.5, ge=0, description="Wait before restarting a background task that raised."
    )
    task_restart_max_seconds: float = Field(
        default=30.0,
        ge=0,
        description="Cap of the doubling wait between restarts of a task that keeps raising.",
    )
    task_heartbeat_grace_seconds: float = Field(
        default=60.0,
        ge=0,
        description="Slack beyond a task's own heartbeat interval before /healthz reports it"
        " as stuck (a slow query or a long pause must not flap the health check).",
    )

    @model_validator(mode="after")
    def _sasl_needs_credentials(self) -> Self:
        if self.kafka_security_protocol.startswith("SASL_"):
            missing = [
                name
                for name, value in (
                    ("KAFKA_SASL_MECHANISM", self.kafka_sasl_mechanism),
                    ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
                    ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
                )
                if not value
            ]
            if missing:
                raise ValueError(
                    f"KAFKA_SECURITY_PROTOCOL {self.kafka_security_protocol} needs {missing}"
                )
        return self

    @property
    def consumer_group(self) -> str:
        return self.kafka_consumer_group or f"reelpolicy-{self.service_name}"


def require_secret(value: SecretStr, *, name: str) -> SecretStr:
    """Refuse a missing, placeholder or too-short secret."""
    raw = value.get_secret_value()
    if raw.strip().lower() in PLACEHOLDER_SECRETS or len(raw) < 16:
        raise ValueError(f"{name} must be set to a real secret of at least 16 characters")
    return value


class SecretKeySettings(ServiceSettings):
    """A service that signs or hashes with a server secret (``REELPOLICY_SECRET_KEY``)."""

    reelpolicy_secret_key: SecretStr = Field(
        description="Server secret used to hash API keys; never a default."
    )

    @field_validator("reelpolicy_secret_key")
    @classmethod
    def _refuse_placeholder(cls, value: SecretStr) -> SecretStr:
        return require_secret(value, name="REELPOLICY_SECRET_KEY")
