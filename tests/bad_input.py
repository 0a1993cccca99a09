"""The bad-input corpus: hostile or careless requests, one row each, per service.

Each service's ``test_<service>_bad_input.py`` holds a table of :class:`Case` rows and
runs every row against the real app (embedded PostgreSQL and broker): the answer must
be the status the row names (a 4xx, never a 5xx) and must name the field at fault.
The corpus grows by adding a row. The body shape of errors is left open (problem
details are coming): the field is looked for in the response text.

Text PostgreSQL cannot store is written here as JSON escapes (``\\u0000``, a lone
``\\ud800``) inside raw bodies, so it reaches the service exactly as a client sends it.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import yaml

from in_process_services import InProcessService, one_service
from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres
from service_harness import ROOT

NUL = "a\x00b"
"""Text with a NUL character, for query and path parameters (sent as ``%00``)."""


POLICY_ID = "bad-input-policy"


def policy_document(**changes: Any) -> dict[str, Any]:
    """A valid catalog policy document (id ``POLICY_ID``) with ``changes`` applied."""
    path = ROOT / "catalog" / "yp-new-enterprise-office.yaml"
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    doc: dict[str, Any] = json.loads(json.dumps(raw, default=str))  # YAML dates -> ISO text
    doc.pop("version", None)
    return {**doc, "id": POLICY_ID, **changes}


def policy_json(**changes: Any) -> str:
    """:func:`policy_document` as JSON text (NUL and lone surrogates become escapes)."""
    return json.dumps(policy_document(**changes))


def deep_policy_json(depth: int) -> str:
    """A policy document whose criteria nest ``depth`` levels of ``not`` (as text: the
    json module's encoder recurses per level)."""
    predicate = '{"field": "enterprise.region_code", "op": "within", "value": "31"}'
    criteria = '{"not": ' * (depth - 1) + predicate + "}" * (depth - 1)
    return policy_json(criteria="CRITERIA").replace('"CRITERIA"', criteria)


@dataclass(frozen=True)
class Case:
    """One bad request: ``{name}`` placeholders in the path, params and body are filled
    from the records the fixture created (``ids``)."""

    name: str
    method: str
    path: str
    status: int
    field: str
    """Must appear in the response text."""
    params: dict[str, str] = field(default_factory=dict)
    body: str | None = None
    """Raw body text (JSON escapes stay escapes), sent as UTF-8; a lone surrogate
    U+DC80..U+DCFF is sent as the one byte 0x80..0xFF it escapes (text not UTF-8)."""
    content_type: str = "application/json"
    headers: dict[str, bytes] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.name


def _fill(text: str, ids: dict[str, str]) -> str:
    for key, value in ids.items():
        text = text.replace("{" + key + "}", value)
    return text


async def send(client: httpx.AsyncClient, case: Case, ids: dict[str, str]) -> httpx.Response:
    headers: dict[str, Any] = dict(case.headers)
    content = None
    if case.body is not None:
        content = _fill(case.body, ids).encode("utf-8", errors="surrogateescape")
        headers["Content-Type"] = case.content_type
    params = {k: _fill(v, ids) for k, v in case.params.items()}
    return await client.request(
        case.method, _fill(case.path, ids), params=params, content=content, headers=headers
    )


def check(response: httpx.Response, case: Case) -> None:
    assert response.status_code == case.status, (case.name, response.status_code, response.text)
    assert case.field in response.text, (case.name, response.text)


@contextlib.asynccontextmanager
async def service_client(
    name: str, postgres: EmbeddedPostgres, broker: EmbeddedBroker
) -> AsyncIterator[tuple[InProcessService, httpx.AsyncClient]]:
    """One service in this process and an operator client that sees server errors as
    answers (status 500) rather than as exceptions raised into the test."""
    async with one_service(name, postgres.uri(), broker.bootstrap_servers) as service:
        transport = httpx.ASGITransport(app=service.app, raise_app_exceptions=False)
        async with httpx.AsyncClient(
            transport=transport,
            base_url=f"http://{name}",
            headers={"Authorization": service.client.headers["Authorization"]},
        ) as client:
            yield service, client
