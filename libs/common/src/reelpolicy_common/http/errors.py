"""Errors as RFC 9457 problem details: every 4xx names the field and the reason.

The body shape and its OpenAPI schema are in :mod:`reelpolicy_common.http.problems`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Generic, TypeVar

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from reelpolicy_common.consumer.faults import INFRASTRUCTURE_ERRORS, is_infrastructure_error
from reelpolicy_common.http.problems import PROBLEM_MEDIA_TYPE, problem_body
from reelpolicy_common.http.routing import allowed_methods
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
        """The problem document: ``detail`` is the message; ``errors`` the given
        ``details``, else the one ``field`` (with ``extra`` as its ``context``)."""
        if self.details is not None:
            return problem_body(self.status_code, self.message, errors=self.details)
        errors: list[dict[str, Any]] = []
        if self.field is not None:
            entry: dict[str, Any] = {"field": self.field, "message": self.message}
            if self.extra is not None:
                entry["context"] = self.extra
            errors.append(entry)
        return problem_body(self.status_code, self.message, errors=errors)

    def response(self, headers: Mapping[str, str] | None = None) -> JSONResponse:
        return problem_response(self.body(), headers=headers)


def problem_response(
    body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        body, status_code=body["status"], headers=headers, media_type=PROBLEM_MEDIA_TYPE
    )


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def validation_details(errors: list[Any]) -> list[dict[str, Any]]:
    return [
        {"field": _location(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type")}
        for e in errors
    ]


def validation_problem(errors: list[Any]) -> dict[str, Any]:
    """The 422 for pydantic's errors: ``detail`` names the first, ``errors`` each."""
    details = validation_details(errors)
    detail = "invalid request"
    if details:
        detail = f"{details[0]['field']}: {details[0]['message']}"
        if len(details) > 1:
            detail += f" (and {len(details) - 1} more)"
    return problem_body(422, detail, errors=details)


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return exc.response()

    async def on_request_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return problem_response(validation_problem(list(exc.errors())))

    async def on_model_validation(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ValidationError)
        return problem_response(validation_problem(list(exc.errors())))

    async def on_http_exception(request: Request, exc: Exception) -> JSONResponse:
        # Starlette's own answers (no such path, method not allowed) in the same shape
        assert isinstance(exc, HTTPException)
        body = problem_body(exc.status_code, str(exc.detail))
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            # Starlette lists the methods of the first route on the path; the
            # OpenAPI document declares every route's there
            methods = allowed_methods(request.app.router.routes, request.url.path)
            headers["Allow"] = ", ".join(methods)
        return problem_response(body, headers=headers)

    async def on_event_too_large(_: Request, exc: Exception) -> JSONResponse:
        # the state change and its event rolled back together (the outbox write raised
        # inside the transaction): answer what the client can shorten
        assert isinstance(exc, EventTooLargeError)
        return ApiError(413, str(exc), field=exc.field or "body").response()

    async def on_unavailable(_: Request, exc: Exception) -> JSONResponse:
        # the database or the broker is away (a restart, a cut connection): the request
        # may succeed later, so say when to try again rather than answer a 500
        if not is_infrastructure_error(exc):
            raise exc
        error = ApiError(503, "a backing service is unavailable; try again shortly")
        return error.response(headers={"Retry-After": str(RETRY_AFTER_SECONDS)})

    for infrastructure_error in INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(infrastructure_error, on_unavailable)
    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(HTTPException, on_http_exception)
    app.add_exception_handler(EventTooLargeError, on_event_too_large)
    app.add_exception_handler(RequestValidationError, on_request_validation)
    app.add_exception_handler(ValidationError, on_model_validation)
