"""Answer an error from an ASGI middleware as a route raising it would be answered.

A middleware runs outside FastAPI's exception handling; rendering through the app's
own handlers keeps one shape for every error, whoever raises it.
"""

from __future__ import annotations

import inspect
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from reelpolicy_common.http.errors import ApiError

Scope = dict[str, Any]


async def answer_error(
    scope: Scope, receive: Any, send: Any, exc: Exception, headers: dict[str, str] | None = None
) -> None:
    """Answer ``exc`` with the app's own exception handler (the errors' shape is the
    app's), as if a route had raised it; the body is never read."""
    response = await _handled(scope, receive, exc)
    for name, value in (headers or {}).items():
        response.headers[name] = value
    await response(scope, receive, send)


async def _handled(scope: Scope, receive: Any, exc: Exception) -> Response:
    handlers: dict[Any, Any] = getattr(scope.get("app"), "exception_handlers", {})
    for kind in type(exc).__mro__:
        handler = handlers.get(kind)
        if handler is not None:
            response = handler(Request(scope, receive), exc)
            if inspect.isawaitable(response):
                response = await response
            assert isinstance(response, Response)
            return response
    if isinstance(exc, ApiError):
        return JSONResponse(exc.body(), status_code=exc.status_code)
    raise exc
