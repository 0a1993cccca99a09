"""The rules HTTP API: ``/v1/eligibility`` (+ history) and ``/v1/simulate``."""

from __future__ import annotations

from fastapi import APIRouter

from reelpolicy_rules.entrypoints.http import eligibility, simulate

routers: list[APIRouter] = [eligibility.router, simulate.router]
