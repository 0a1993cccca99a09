"""Ingest settings (environment variables; see README)."""

from __future__ import annotations

from pydantic import Field

from reelpolicy_common.settings import SecretKeySettings


class Settings(SecretKeySettings):
    service_name: str = "ingest"
    http_port: int = Field(default=8002, ge=1, le=65535)
    max_document_bytes: int = Field(default=256 * 1024, ge=1024)
