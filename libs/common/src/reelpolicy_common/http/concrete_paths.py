"""ASGI: a concrete path answers with its own methods (see
:mod:`~reelpolicy_common.http.routing`)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute

from reelpolicy_common.http.answers import answer_error
from reelpolicy_common.http.routing import methods_by_path

Scope = dict[str, Any]


class ConcretePathsFirst:
    """ASGI: a method not declared on a concrete path is a 405 there, even when a
    templated route on the same prefix declares it."""

    def __init__(self, app: Any, *, routes: Iterable[BaseRoute]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            concrete, _ = methods_by_path(self.routes, scope["path"])
            if concrete and scope["method"] not in concrete:
                await answer_error(scope, receive, send, HTTPException(405))
                return
        await self.app(scope, receive, send)
