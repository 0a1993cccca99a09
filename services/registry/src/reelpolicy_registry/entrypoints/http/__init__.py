"""The registry HTTP API (``/v1``): its routers."""

from __future__ import annotations

from fastapi import APIRouter

from reelpolicy_registry.entrypoints.http import (
    api_keys,
    enterprises,
    imports,
    portal_links,
    productions,
)

routers: list[APIRouter] = [
    enterprises.router,
    productions.router,
    api_keys.router,
    imports.router,
    portal_links.router,
]
