"""A most size for each request body, enforced before the body is read past it.

A declared ``Content-Length`` over the limit is answered 413 before anything is read;
a body sent without one (chunked) is counted as the app receives it, and answered 413
as soon as it goes over, so no route ever holds more than its limit. The limit is per
path prefix (a document or an import route has its own), else the default.

FastAPI's own ``max_body_size`` answers a declared oversize in plain text whatever the
app's error handlers say; this one answers through them, like every other error.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

from reelpolicy_common.http.answers import answer_error
from reelpolicy_common.http.errors import ApiError

Scope = dict[str, Any]


class _BodyOverLimitError(Exception):
    """Stops the app reading a body that went over its limit (already answered 413)."""


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name == b"content-length":
            return int(value) if value.isdigit() else None
    return None


class BodyLimit:
    """ASGI: 413 for a request body over its path's limit, before it is read further."""

    def __init__(self, app: Any, *, default: int, limits: Mapping[str, int]) -> None:
        self.app = app
        self.default = default
        # longest prefix first, so /v1/import/x takes /v1/import's limit over /v1's
        self.limits = sorted(limits.items(), key=lambda item: -len(item[0]))

    def limit_for(self, path: str) -> int:
        for prefix, limit in self.limits:
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return limit
        return self.default

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await answer_error(scope, receive, send, too_large(limit))
            return
        received = 0
        started = answered = False

        async def limited_receive() -> Any:
            nonlocal received, answered
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    if not started:
                        await answer_error(scope, receive, send, too_large(limit))
                        answered = True
                    raise _BodyOverLimitError
            return message

        async def guarded_send(message: Any) -> None:
            nonlocal started
            if answered:  # the app answering the interruption: the 413 is already sent
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        # answered 413, or a response was under way (the server cuts it short)
        with contextlib.suppress(_BodyOverLimitError):
            await self.app(scope, limited_receive, guarded_send)


def too_large(limit: int) -> ApiError:
    return ApiError(413, f"request body larger than {limit} bytes", field="body")
