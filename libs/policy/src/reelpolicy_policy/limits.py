"""Limits on the shape of a policy document, checked before anything recursive runs.

The criteria tree is parsed, evaluated and serialized by recursive functions; a tree
nested a few hundred levels deep would pass a structural check and then exhaust the
interpreter's stack (a ``RecursionError``) wherever it is next walked. So a document
is first walked once, iteratively, and refused when it breaks a limit: its nesting
(``MAX_DOCUMENT_DEPTH`` JSON levels), its size (``MAX_DOCUMENT_NODES`` values), the
nesting of its criteria (``MAX_CRITERIA_DEPTH`` all/any/not levels), or text that
PostgreSQL cannot store. Each problem is a ``{path, message}`` naming the limit.
"""

from __future__ import annotations

from typing import Any

from reelpolicy_contracts.storable import unstorable_json_path

MAX_CRITERIA_DEPTH = 32
"""Levels of ``all`` / ``any`` / ``not`` in a criteria tree (a predicate is one level);
real policies use three or four."""
MAX_DOCUMENT_DEPTH = 2 * MAX_CRITERIA_DEPTH + 8
"""JSON nesting of a whole document: the deepest criteria (an object and a list per
level) inside the document, and room for a predicate's value list."""
MAX_DOCUMENT_NODES = 200_000
"""JSON values (objects, lists, scalars) in one document."""


def _shape_problem(data: Any) -> dict[str, str] | None:
    """The first breach of the depth or node limit in ``data``, or None."""
    nodes = 0
    pending: list[tuple[Any, int, str]] = [(data, 1, "$")]
    while pending:
        value, depth, path = pending.pop()
        nodes += 1
        if nodes > MAX_DOCUMENT_NODES:
            message = f"the document has more than {MAX_DOCUMENT_NODES} values (MAX_DOCUMENT_NODES)"
            return {"path": "$", "message": message}
        if depth > MAX_DOCUMENT_DEPTH:
            message = f"nested deeper than {MAX_DOCUMENT_DEPTH} levels (MAX_DOCUMENT_DEPTH)"
            return {"path": path, "message": message}
        if isinstance(value, dict):
            pending.extend((v, depth + 1, f"{path}.{k}") for k, v in value.items())
        elif isinstance(value, list | tuple):
            pending.extend((v, depth + 1, f"{path}[{i}]") for i, v in enumerate(value))
    return None


def _criteria_problem(criteria: Any) -> dict[str, str] | None:
    """Where the criteria tree nests deeper than :data:`MAX_CRITERIA_DEPTH`, or None."""
    pending: list[tuple[Any, int, str]] = [(criteria, 1, "$.criteria")]
    while pending:
        node, depth, path = pending.pop()
        if depth > MAX_CRITERIA_DEPTH:
            message = (
                f"criteria nested deeper than {MAX_CRITERIA_DEPTH} levels (MAX_CRITERIA_DEPTH)"
            )
            return {"path": path, "message": message}
        if not isinstance(node, dict):
            continue
        for combinator in ("all", "any"):
            children = node.get(combinator)
            if isinstance(children, list):
                pending.extend(
                    (child, depth + 1, f"{path}.{combinator}[{i}]")
                    for i, child in enumerate(children)
                )
        if "not" in node:
            pending.append((node["not"], depth + 1, f"{path}.not"))
    return None


def document_limit_errors(data: Any) -> list[dict[str, str]]:
    """The limits ``data`` (a parsed document) breaks, as ``{path, message}``; empty
    when it may be validated. Runs in time linear in the document, without recursion."""
    errors = []
    if isinstance(data, dict) and "criteria" in data:
        criteria = _criteria_problem(data["criteria"])
        if criteria is not None:
            errors.append(criteria)
    shape = _shape_problem(data)
    if shape is not None:
        errors.append(shape)
        return errors  # too big to walk again
    unstorable = unstorable_json_path(data)
    if unstorable is not None:
        path, reason = unstorable
        errors.append({"path": path, "message": f"text {reason}"})
    return errors
