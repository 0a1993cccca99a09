"""The OpenAPI declaration of a route whose body is a policy document (ingest's
``POST /v1/policies``, rules' ``POST /v1/simulate``).

The route reads the body itself (``request.body()``) and checks it with the policy
library, so FastAPI sees no body parameter: the body and the refusals are declared
here. A policy document is published as a bare JSON object: the language is recursive,
its operators depend on the field, and its cross-references no JSON Schema can state,
so a client sends a document as it was written and gets every refusal (400) with the
JSON path at fault.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from reelpolicy_common.http.problems import problem_example, problem_responses

INVALID_POLICY_EXAMPLE = problem_example(
    400,
    "invalid policy document",
    ("$.criteria.all[0].field", "unknown field 'production.platfroms'"),
)


def policy_refused(what: str, schema: str) -> str:
    """The 400's description: ``what`` ("The document") is not a valid policy, checked
    against ``schema`` (where the route's reader finds the policy JSON Schema) first."""
    return (
        f"{what} is not a valid policy ({schema}, cross-references, value types per field,"
        " storable text and numbers, nesting limits): `errors` names each JSON path at fault"
    )


def policy_document_responses(
    *, refused: str, not_an_object: str, more: Mapping[int, str] | None = None
) -> dict[int | str, dict[str, Any]]:
    """``responses=``: 403 (operators only), 400 ``refused`` with an example naming the
    path at fault, the route's ``more`` statuses, then 422 ``not_an_object``."""
    return problem_responses(
        403,
        descriptions={400: refused, **(more or {}), 422: not_an_object},
        examples={400: INVALID_POLICY_EXAMPLE},
    )


def policy_document_body(
    *,
    description: str | None = None,
    example: Mapping[str, Any] | None = None,
    also_yaml: bool = False,
) -> dict[str, Any]:
    """``openapi_extra=``: the required request body, a JSON object (with ``example``),
    and with ``also_yaml`` the same document as YAML text."""
    as_json: dict[str, Any] = {"schema": {"type": "object"}}
    if example is not None:
        as_json["example"] = dict(example)
    content: dict[str, Any] = {"application/json": as_json}
    if also_yaml:
        content["application/yaml"] = {"schema": {"type": "string"}}
    body: dict[str, Any] = {"required": True}
    if description is not None:
        body["description"] = description
    body["content"] = content
    return {"requestBody": body}
