"""Errors as JSON: every 4xx names the field and the reason.

Body shape: ``{"detail": [{"field": "a.b", "message": "...", "type": "..."}]}``
(for request validation, one entry per problem) or ``{"detail": "..."}``.
"""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

from reelpolicy_common.consumer.faults import INFRASTRUCTURE_ERRORS, is_infrastructure_error
from reelpolicy_common.outbox.store import EventTooLargeError

T = TypeVar("T")

RETRY_AFTER_SECONDS = 5
"""What a 503 asks the client to wait while the database or broker is unavailable."""


class Page(BaseModel, Generic[T]):
    """A page of a list: ``items`` and the cursor of the next page (null at the end)."""

    items: list[T]
    next_cursor: str | None = None


class ApiError(Exception):
    """A client error with a status, a message and optionally the field at fault."""

    def __init__(
        self,
        status_code: int,
        message: str,
        *,
        field: str | None = None,
        extra: Any = None,
        details: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.message = message
        self.field = field
        self.extra = extra
        self.details = details

    def body(self) -> dict[str, Any]:
        if self.details is not None:
            return {"detail": self.details}
        entry: dict[str, Any] = {"message": self.message}
        if self.field is not None:
            entry["field"] = self.field
        if self.extra is not None:
            entry["context"] = self.extra
        return {"detail": [entry]}


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    return [
        {"field": _location(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return JSONResponse(exc.body(), status_code=exc.status_code)

    async def on_request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return JSONResponse({"detail": validation_details(list(exc.errors()))}, status_code=422)

    async def on_model_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)
        return JSONResponse({"detail": validation_details(list(exc.errors()))}, status_code=422)

    async def on_event_too_large(_: Request, exc: Exception) -> JSONResponse:
        # the state change and its event rolled back together (the outbox write raised
        # inside the transaction): answer what the client can shorten
        assert isinstance(exc, EventTooLargeError)
        error = ApiError(413, str(exc), field=exc.field or "body")
        return JSONResponse(error.body(), status_code=413)

    async def on_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # the database or the broker is away (a restart, a cut connection): the request
        # may succeed later, so say when to try again rather than answer a 500
        if not is_infrastructure_error(exc):
            raise exc
        error = ApiError(503, "a backing service is unavailable; try again shortly")
        return JSONResponse(
            error.body(), status_code=503, headers={"Retry-After": str(RETRY_AFTER_SECONDS)}
        )

    for infrastructure_error in INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(infrastructure_error, on_unavailable)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(EventTooLargeError, on_event_too_large)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
