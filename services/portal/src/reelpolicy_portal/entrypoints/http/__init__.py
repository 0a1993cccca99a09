"""The portal's pages: one router per part of the site."""

from __future__ import annotations

from fastapi import APIRouter

from reelpolicy_portal.entrypoints.http import (
    alerts,
    eligibility,
    feeds,
    operator,
    overview,
    policies,
    sign_in,
)

routers: list[APIRouter] = [
    sign_in.router,
    overview.router,
    eligibility.router,
    policies.router,
    alerts.router,
    feeds.router,
    operator.router,
]
