"""The portal's pages: one router per part of the site."""

from __future__ import annotations

from fastapi import APIRouter

from reelpolicy_portal.entrypoints.http import alerts, feeds, operator, overview, sign_in

routers: list[APIRouter] = [sign_in.router, overview.router]
routers += [alerts.router, operator.router, feeds.router]
