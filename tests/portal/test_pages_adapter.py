"""The portal's reading of the services' answers for the operator's pages: dead-letter
gauges from /metrics, and rules' problems with a draft as the form's errors."""

from __future__ import annotations

import httpx
import pytest

from reelpolicy_portal.adapters.services_api import ServicesApi
from reelpolicy_portal.domain.errors import ServiceUnavailableError
from reelpolicy_portal.domain.simulation import DraftRejectedError

METRICS = """# HELP reelpolicy_dead_letters_waiting Records of <topic>.dlq not replayed yet
# TYPE reelpolicy_dead_letters_waiting gauge
reelpolicy_dead_letters_waiting{topic="reelpolicy.registry.v1"} 3.0
reelpolicy_dead_letters_waiting{topic="reelpolicy.policies.v1"} 0.0
# HELP process_open_fds Number of open file descriptors.
# TYPE process_open_fds gauge
process_open_fds 12.0
"""


def services(handler: object) -> ServicesApi:
    transport = httpx.MockTransport(handler)  # type: ignore[arg-type]
    return ServicesApi(
        registry_url="http://registry",
        rules_url="http://rules",
        ingest_url="http://ingest",
        notify_url="http://notify",
        timeout=5,
        transports={name: transport for name in ("registry", "rules", "ingest", "notify")},
    )


async def test_dead_letters_are_read_from_each_services_gauge() -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/metrics"
        body = METRICS if request.url.host == "rules" else "# nothing counted yet\n"
        return httpx.Response(200, text=body)

    api = services(answer)
    try:
        found = await api.dead_letters()
    finally:
        await api.aclose()
    assert found == {
        "registry": {},
        "ingest": {},
        "rules": {"reelpolicy.registry.v1": 3, "reelpolicy.policies.v1": 0},
        "notify": {},
    }


async def test_rules_problems_with_a_draft_become_form_errors() -> None:
    problem = {
        "title": "Bad Request",
        "status": 400,
        "detail": "invalid policy document",
        "errors": [{"field": "$.criteria.all[0].field", "message": "unknown field 'x'"}],
    }

    def answer(request: httpx.Request) -> httpx.Response:
        assert request.headers["content-type"] == "application/json"
        assert request.headers["authorization"] == "Bearer ops-key"
        return httpx.Response(400, json=problem)

    api = services(answer)
    try:
        with pytest.raises(DraftRejectedError) as refused:
            await api.simulate("ops-key", b"{}")
    finally:
        await api.aclose()
    assert refused.value.problems == [("$.criteria.all[0].field", "unknown field 'x'")]


async def test_a_failing_rules_is_unavailable_not_a_form_error() -> None:
    api = services(lambda request: httpx.Response(503, json={"title": "down"}))
    try:
        with pytest.raises(ServiceUnavailableError):
            await api.simulate("ops-key", b"{}")
    finally:
        await api.aclose()
