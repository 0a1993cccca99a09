"""Registry settings (environment variables; every registry-only one has a default)."""

from __future__ import annotations

from pydantic import AnyHttpUrl, Field

from reelpolicy_common.settings import SecretKeySettings


class Settings(SecretKeySettings):
    service_name: str = "registry"
    http_port: int = Field(default=8001, ge=1, le=65535)
    max_body_bytes: int = Field(
        default=1024 * 1024, ge=1024, description="Largest JSON body of a single-record call."
    )
    max_import_bytes: int = Field(
        default=512 * 1024 * 1024, ge=1024, description="Largest body of POST /v1/import."
    )
    max_productions_per_company: int = Field(
        default=10_000,
        ge=0,
        description="Live productions a company key may have registered for its enterprise"
        " (409 beyond); operators and imports are not limited.",
    )
    import_chunk_rows: int = Field(
        default=20_000, ge=1, description="Rows validated, copied and committed together."
    )
    import_writers: int = Field(
        default=2,
        ge=1,
        description="Chunks of productions an import writes at once, each on a connection"
        " of the pool (which it needs one more of, to look up enterprises meanwhile).",
    )
    import_processes: int = Field(
        default=1,
        ge=0,
        description="Worker processes that validate import rows beside the database writes"
        " (started on the first import, then kept); 0 validates in a thread instead.",
    )
    portal_base_url: AnyHttpUrl = Field(
        default=AnyHttpUrl("http://127.0.0.1:8005"),
        description="The portal's address: a sign-in link is {PORTAL_BASE_URL}/sign-in/link?token=...",
    )
    portal_link_valid_minutes: int = Field(
        default=15,
        ge=1,
        le=24 * 60,
        description="How long a one-time sign-in link to the portal can be redeemed.",
    )
