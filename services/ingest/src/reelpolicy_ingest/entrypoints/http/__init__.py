"""The ingest HTTP API: one router per resource."""

from fastapi import APIRouter

from reelpolicy_ingest.entrypoints.http import policies

routers: list[APIRouter] = [policies.router]
