"""What the registry's use cases refuse with (each entrypoint answers it in its own way)."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _field_errors(exc: ValidationError) -> list[dict[str, Any]]:
    """pydantic's errors in the form the API reports a request's own (``field``,
    ``message``, ``type``), so a record refused here reads like a request refused there."""
    return [
        {"field": _location(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
        for e in exc.errors()
    ]


class InvalidRecordError(Exception):
    """A record that breaks a rule; ``errors`` name the field and the reason."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("; ".join(f"{e['field']}: {e['message']}" for e in errors))
        self.errors = errors

    @classmethod
    def one(cls, field: str, message: str) -> InvalidRecordError:
        return cls([{"field": field, "message": message}])

    @classmethod
    def from_validation(cls, exc: ValidationError) -> InvalidRecordError:
        return cls(_field_errors(exc))


class NotFoundError(Exception):
    """No such record; ``field`` is where the request named it."""

    def __init__(self, what: str, ident: str, *, field: str = "id") -> None:
        super().__init__(f"{what} {ident} not found")
        self.what = what
        self.ident = ident
        self.field = field


class StaleVersionError(Exception):
    """The caller named a version (``If-Match``) that is not the current one."""

    def __init__(self, *, expected: int, current: int) -> None:
        super().__init__(f"version {expected} is stale; the current version is {current}")
        self.current = current


class QuotaExceededError(Exception):
    """A company is at the most records of a kind it may have (operators have none)."""

    def __init__(self, message: str, *, field: str) -> None:
        super().__init__(message)
        self.field = field


class DuplicateError(Exception):
    """A uniqueness rule was broken (credit code, or external id per enterprise)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
