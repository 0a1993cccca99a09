"""What can go wrong when the portal asks the other services."""

from __future__ import annotations

from typing import Any


class KeyRefusedError(Exception):
    """The API key is unknown, revoked or expired (registry answered 401)."""


class NotFoundError(Exception):
    """Not there, or not this company's (the services answer both alike: 404)."""


class VersionConflictError(Exception):
    """The record changed since the form showed it (412 on ``If-Match``)."""

    def __init__(self, current: dict[str, Any]) -> None:
        super().__init__("the record changed")
        self.current = current


class InputRejectedError(Exception):
    """A service refused a value (4xx problem details); ``detail`` is its words."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class ServiceUnavailableError(Exception):
    """Another service did not answer, or answered 5xx."""
