"""Route matching as the OpenAPI document reads it.

OpenAPI resolves a path before a method, and a concrete path
(``/v1/deliveries/replay``) before a templated one (``/v1/deliveries/{delivery_id}``).
Starlette takes the first route whose path *and* method match, and answers 405 with
the methods of the first route whose path alone matched. So ``GET
/v1/deliveries/replay`` (only POST is declared there) reached the GET of
``{delivery_id}`` with ``replay`` for an id, and ``OPTIONS /v1/subscriptions``
answered ``Allow: POST`` though GET is declared there too.
"""

from __future__ import annotations

from collections.abc import Iterable

from fastapi.routing import iter_route_contexts
from starlette.routing import BaseRoute


def methods_by_path(routes: Iterable[BaseRoute], path: str) -> tuple[set[str], set[str]]:
    """The methods of the routes whose concrete path is ``path``, and of every route
    whose path (concrete or templated) matches it."""
    concrete: set[str] = set()
    matching: set[str] = set()
    for route in iter_route_contexts(list(routes)):
        regex = getattr(route, "path_regex", None)
        if not route.methods or regex is None or not regex.match(path):
            continue
        matching |= route.methods
        if not route.param_convertors:
            concrete |= route.methods
    return concrete, matching


def allowed_methods(routes: Iterable[BaseRoute], path: str) -> list[str]:
    """The ``Allow`` of a 405 on ``path``: the methods of its concrete routes if it
    has any, else of every templated route matching it (FastAPI's routes, unlike
    Starlette's, answer no HEAD for a GET)."""
    concrete, matching = methods_by_path(routes, path)
    return sorted(concrete or matching)
