"""RFC 9457 problem details: the one error body of every service, and how OpenAPI shows it.

Body (``application/problem+json``)::

    {"type": "about:blank", "title": "Unprocessable Content", "status": 422,
     "detail": "tags.0: ...", "errors": [{"field": "tags.0", "message": "..."}]}

``errors`` names each field at fault (empty when none is); an entry may carry more
members (``type``, ``context``, an import's ``row``), and a problem may carry extension
members (an import report's counts). Routes declare the statuses only they answer with
``responses=problem_responses(404, 409)``; :func:`document_problems` adds, to every
operation, the statuses every operation of its kind answers (see ``_implied``).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_SCHEMA_REF = "#/components/schemas/Problem"

AUTHENTICATED_STATUSES = (401, 429, 503)
"""What every operation behind an API key can answer: no or a dead key; a key over its
rate limit; the key lookup (or any later query) meeting an unavailable database or broker."""


class FieldError(BaseModel):
    """One thing wrong with the request, and where."""

    model_config = ConfigDict(extra="allow")

    field: str = Field(
        description="Where: a dotted body path (`tags.0`), a parameter or header name"
        " (`If-Match`), or `body` for the request as a whole."
    )
    message: str = Field(description="What is wrong, for a person.")


class Problem(BaseModel):
    """An error answer (RFC 9457 problem details)."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(description="`about:blank`: the status says what kind of problem.")
    title: str = Field(description="The status's reason phrase.")
    status: int
    detail: str = Field(description="What went wrong with this request.")
    errors: list[FieldError] = Field(description="Each field at fault; empty when none is.")


def problem_body(
    status: int, detail: str, *, errors: list[dict[str, Any]] | None = None, **extensions: Any
) -> dict[str, Any]:
    """A problem document (``extensions`` are extra top-level members)."""
    return {
        "type": "about:blank",
        "title": _title(status),
        "status": status,
        "detail": detail,
        "errors": errors or [],
        **extensions,
    }


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


_DEFAULT_DESCRIPTIONS = {
    400: "Malformed request (a header, cursor or file that cannot be read)",
    401: "No API key, or an unknown or revoked one",
    403: "This operation needs an operator key",
    404: "No such record, or not the caller's (a company key never learns other ids)",
    409: "Conflicts with what is stored",
    412: "`If-Match` names a version that is no longer current",
    413: "The request body or the event it makes is over a size limit",
    415: "Unsupported Content-Type",
    422: "The request is not valid: `errors` names each field at fault",
    428: "`If-Match` is required",
    429: "Too many requests: wait for `Retry-After` seconds",
    503: "The database or the broker is unavailable: nothing was stored; retry after"
    " `Retry-After` seconds",
}


def problem_response(status: int, description: str | None = None) -> dict[str, Any]:
    """The OpenAPI response object of one error status."""
    response: dict[str, Any] = {
        "description": description or _DEFAULT_DESCRIPTIONS.get(status) or _title(status),
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }
    if status in (429, 503):
        response["headers"] = {
            "Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}
        }
    return response


def problem_responses(
    *statuses: int,
    descriptions: dict[int, str] | None = None,
    examples: dict[int, dict[str, Any]] | None = None,
) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route: the problem schema for each status it can answer.

    ``descriptions`` says what a status means on this route, ``examples`` shows an
    answer (:func:`problem_example`); the statuses they name are declared too.
    """
    described = descriptions or {}
    shown = examples or {}
    responses: dict[int | str, dict[str, Any]] = {}
    for status in dict.fromkeys((*statuses, *described, *shown)):
        response = problem_response(status, described.get(status))
        if status in shown:
            response["content"][PROBLEM_MEDIA_TYPE]["example"] = shown[status]
        responses[status] = response
    return responses


def problem_example(status: int, detail: str, *errors: tuple[str, str]) -> dict[str, Any]:
    """An example problem for a route's documentation."""
    return problem_body(status, detail, errors=[{"field": f, "message": m} for f, m in errors])


def request_example(example: Any, media_type: str = "application/json") -> dict[str, Any]:
    """``openapi_extra=`` showing an example request body (the body's schema stays
    FastAPI's, from the route's parameters)."""
    return {"requestBody": {"content": {media_type: {"example": example}}}}


def document_problems(document: dict[str, Any], *, public_paths: frozenset[str]) -> None:
    """Make an OpenAPI document state the problem schema for every error it can answer.

    Publishes ``Problem``/``FieldError``; replaces FastAPI's ``HTTPValidationError`` 422
    (a shape no service answers); gives every declared 4xx/5xx the problem schema; adds
    the statuses each operation implies (see ``_implied``).
    """
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    problem_schema = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(problem_schema.pop("$defs", {}))
    schemas["Problem"] = problem_schema
    for path, operations in document.get("paths", {}).items():
        if path in public_paths:
            continue
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for status in _implied(operation):
                responses.setdefault(str(status), problem_response(status))
            for status, response in list(responses.items()):
                if status.isdigit() and int(status) >= 400:
                    responses[status] = _as_problem(response, int(status))
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)


def _implied(operation: dict[str, Any]) -> list[int]:
    """Statuses every operation of this kind answers: behind a key, 401 and 503; with
    any input, 422; with a body, 413 (every service limits body sizes)."""
    statuses: list[int] = []
    if operation.get("security"):
        statuses += AUTHENTICATED_STATUSES
    if operation.get("parameters") or operation.get("requestBody"):
        statuses.append(422)
    if operation.get("requestBody"):
        statuses.append(413)
    return statuses


def _as_problem(response: dict[str, Any], status: int) -> dict[str, Any]:
    content = response.get("content") or {}
    problem = content.get(PROBLEM_MEDIA_TYPE) or {}
    example = problem.get("example")
    documented = {
        "description": response.get("description") or problem_response(status)["description"],
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": PROBLEM_SCHEMA_REF}}},
    }
    if example is not None:
        documented["content"][PROBLEM_MEDIA_TYPE]["example"] = example
    headers = response.get("headers") or problem_response(status).get("headers")
    if headers:
        documented["headers"] = headers
    return documented
