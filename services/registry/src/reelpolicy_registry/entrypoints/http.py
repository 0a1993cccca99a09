"""The registry HTTP API (``/v1``): its routers and the request-size guard."""

from __future__ import annotations

import json
from typing import Any

from fastapi import APIRouter

from reelpolicy_common.http.problems import PROBLEM_MEDIA_TYPE, problem_body
from reelpolicy_registry.entrypoints import api_keys, enterprises, imports, productions

routers: list[APIRouter] = [
    enterprises.router,
    productions.router,
    api_keys.router,
    imports.router,
]

Scope = dict[str, Any]


class BodySizeLimit:
    """ASGI middleware: a body over the limit answers 413 before any handler runs.

    ``limits`` maps a path to its own limit (the bulk import); others get ``default``.
    """

    def __init__(self, app: Any, *, default: int, limits: dict[str, int]) -> None:
        self.app = app
        self.default = default
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.get(scope["path"].rstrip("/"), self.default)
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await self._too_large(send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        more = scope["method"] in ("POST", "PUT", "PATCH")
        while more:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._too_large(send, limit)
                return
            more = message.get("more_body", False)
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed and scope["method"] in ("POST", "PUT", "PATCH"):
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _too_large(send: Any, limit: int) -> None:
        message = f"request body larger than {limit} bytes"
        problem = problem_body(413, message, errors=[{"field": "body", "message": message}])
        body = json.dumps(problem).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
