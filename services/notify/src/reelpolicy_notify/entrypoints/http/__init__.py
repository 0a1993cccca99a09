"""The notify HTTP API: one router per resource."""

from __future__ import annotations

from fastapi import APIRouter

from reelpolicy_notify.entrypoints.http import deliveries, subscriptions, unsubscribe

routers: list[APIRouter] = [subscriptions.router, deliveries.router, unsubscribe.router]
