"""Portal settings (environment variables; see docs/settings.md). Every setting but the
secrets has a default."""

from __future__ import annotations

from cryptography.fernet import Fernet, MultiFernet
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from reelpolicy_common.settings import PLACEHOLDER_SECRETS, ServiceSettings, require_secret


def parse_fernet_keys(value: str) -> MultiFernet:
    """Comma-separated Fernet keys (the first encrypts, all decrypt); ValueError names
    the position of a key that is not one, never its text."""
    keys = [part.strip() for part in value.split(",") if part.strip()]
    if not keys:
        raise ValueError("PORTAL_KEY_ENCRYPTION_KEYS must name at least one Fernet key")
    fernets = []
    for position, key in enumerate(keys, start=1):
        if key.lower() in PLACEHOLDER_SECRETS:
            raise ValueError(f"PORTAL_KEY_ENCRYPTION_KEYS: key {position} is a placeholder")
        try:
            fernets.append(Fernet(key))
        except ValueError:
            raise ValueError(
                f"PORTAL_KEY_ENCRYPTION_KEYS: key {position} is not a Fernet key"
                " (32 url-safe base64-encoded bytes: Fernet.generate_key())"
            ) from None
    return MultiFernet(fernets)


class Settings(ServiceSettings):
    # a refused secret must not be echoed into logs by the validation error
    model_config = SettingsConfigDict(hide_input_in_errors=True)

    service_name: str = "portal"
    http_port: int = Field(default=8005, ge=1, le=65535)
    registry_url: str = Field(
        default="http://127.0.0.1:8001", description="Base URL of the registry's HTTP API."
    )
    ingest_url: str = Field(
        default="http://127.0.0.1:8002", description="Base URL of the ingest service's HTTP API."
    )
    rules_url: str = Field(
        default="http://127.0.0.1:8003", description="Base URL of the rules service's HTTP API."
    )
    notify_url: str = Field(
        default="http://127.0.0.1:8004", description="Base URL of the notify service's HTTP API."
    )
    upstream_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long one call to another service may take."
    )
    portal_session_secret: SecretStr = Field(
        description="Signs the session cookie and the forms' CSRF tokens; never a default."
    )
    portal_key_encryption_keys: SecretStr = Field(
        description="Fernet keys (comma-separated; the first encrypts, all decrypt) that"
        " encrypt each session's API key at rest; never a default. Rotation: put a new key"
        " first, keep the old one until the sessions it encrypted have expired."
    )
    portal_secure_cookies: bool = Field(
        default=False,
        description="Mark the session and language cookies Secure: true behind TLS.",
    )
    portal_session_hours: float = Field(
        default=12.0, gt=0, description="How long a session lasts after sign-in."
    )
    portal_session_prune_seconds: float = Field(
        default=300.0,
        gt=0,
        description="How often expired sessions are deleted from the database.",
    )
    portal_sign_in_failures: int = Field(
        default=10,
        ge=1,
        description="Failed API-key sign-ins a client address may make within"
        " PORTAL_SIGN_IN_WINDOW_SECONDS before it is answered 429 (counted per process).",
    )
    portal_sign_in_window_seconds: float = Field(
        default=900.0, gt=0, description="The sliding window of PORTAL_SIGN_IN_FAILURES."
    )
    portal_refresh_seconds: float = Field(
        default=3.0,
        gt=0,
        description="How often an open eligibility page asks the portal for changed rows.",
    )

    @field_validator("portal_session_secret")
    @classmethod
    def _real_session_secret(cls, value: SecretStr) -> SecretStr:
        return require_secret(value, name="PORTAL_SESSION_SECRET")

    @field_validator("portal_key_encryption_keys")
    @classmethod
    def _valid_fernet_keys(cls, value: SecretStr) -> SecretStr:
        parse_fernet_keys(value.get_secret_value())
        return value

    def key_cipher(self) -> MultiFernet:
        return parse_fernet_keys(self.portal_key_encryption_keys.get_secret_value())
