"""HTTP plumbing every service shares: app factory, health, AsyncAPI, errors, metrics."""

from reelpolicy_common.http.app import create_service_app
from reelpolicy_common.http.errors import ApiError, Page
from reelpolicy_common.http.problems import (
    problem_example,
    problem_responses,
    request_example,
)

__all__ = [
    "ApiError",
    "Page",
    "create_service_app",
    "problem_example",
    "problem_responses",
    "request_example",
]
