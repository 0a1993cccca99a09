"""The OpenAPI fuzz suite: every service answers exactly as its published OpenAPI says.

schemathesis reads each service's ``/openapi.json`` and sends generated requests, valid
and invalid (its examples, coverage and fuzzing phases), with every check on: no server
error, every status documented, bodies and content types as documented, invalid
requests refused, schema-valid requests accepted, auth not ignored, no unsupported
method accepted. Each service is attacked twice, with an operator key and with a
company key bound to a demo enterprise (``conftest.py`` starts the platform). A
stateful run follows the links schemathesis infers (create, then read, change and
delete what was created) with each key.

One exclusion, and its reason: the API-key operations (``/v1/api-keys``) can revoke
keys, so the main runs leave them out and ``test_api_key_operations`` fuzzes them last,
with an operator key of their own and without reusing ids seen in earlier answers
(which would let it revoke the other runs' keys).

``FUZZ_SEED`` and ``FUZZ_EXAMPLES`` set the seed and the examples per operation
(``make fuzz SEED=... EXAMPLES=...``); the summary at the end prints both and the
requests sent per service. The generation is seeded (each operation's seed derives from
it, the stateful scenarios and their rule order too) and keeps no example database, so
a seed sends the same requests again, except where a request reuses an id the services
generated in an earlier answer. A failing operation stops at its first distinct failure
(Hypothesis then shrinks it), so fixing one finding can uncover the next.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import hypothesis
import pytest
import requests
import schemathesis
from fuzz_platform import FUZZ_EXAMPLES, FUZZ_SEED, TALLY, FuzzPlatform
from hypothesis.errors import Flaky
from schemathesis.errors import FailureGroup

# The first test's time includes starting the platform.
pytestmark = [
    pytest.mark.servers,
    pytest.mark.fuzz,
    pytest.mark.timeout(300 + 20 * FUZZ_EXAMPLES),
]

API_KEY_PATHS = r"^/v1/api-keys"
STATEFUL_STEPS = 6
"""Calls in one stateful scenario."""
REQUEST_TIMEOUT_SECONDS = 10
"""A request that takes longer fails the run: no input may hang a service."""


@dataclass(frozen=True)
class Target:
    service: str
    key: str
    """Which of the platform's keys: operator, company or api_keys."""

    def __str__(self) -> str:
        return f"{self.service}-{self.key}"


# Company keys first: an operator run may delete the enterprise the company key is bound
# to (it reuses ids from earlier answers), and the company runs need it to exist.
MAIN_TARGETS = [
    Target(service, key)
    for key in ("company", "operator")
    for service in ("registry", "ingest", "rules", "notify")
]


class CountingSession(requests.Session):
    """The HTTP session every request of a target goes through (the checks that send
    requests of their own included), counting them into the closing tally."""

    def __init__(self, target: Target) -> None:
        super().__init__()
        self.hooks["response"].append(self._count)
        self.target = target

    def _count(self, response: requests.Response, *_: Any, **__: Any) -> requests.Response:
        TALLY.requests[(self.target.service, self.target.key)] += 1
        if 200 <= response.status_code < 300:
            TALLY.accepted[(self.target.service, self.target.key)] += 1
        return response


def _schema(platform: FuzzPlatform, target: Target, *, reuse_answers: bool) -> Any:
    key = {
        "operator": platform.operator_key,
        "company": platform.company_key,
        "api_keys": platform.api_keys_key,
    }[target.key]
    base_url = platform.urls[target.service]
    config = schemathesis.Config.from_dict(
        {
            "seed": FUZZ_SEED,
            "base-url": base_url,
            # as the scheme the OpenAPI declares, so the auth checks know the key is the
            # configured one (and probe the operation without it and with a wrong one)
            "auth": {"openapi": {"HTTPBearer": {"bearer": key}}},
            "request-timeout": REQUEST_TIMEOUT_SECONDS,
            "checks": {
                "enabled": True,
                # The services' convention, stated in each operation's OpenAPI: 422 is a
                # request that does not match its schema; 400 a schema-valid request that
                # breaks a documented rule the schema language cannot state (one of two
                # query parameters, a cursor not given by an earlier page, an empty CSV).
                # 412: a well-formed If-Match naming a version that is not the current one
                # (RFC 9110's answer to a failed precondition; no schema knows the version).
                "positive_data_acceptance": {
                    "expected-statuses": ["2xx", "3xx", 400, 401, 403, 404, 409, 412, 429, "5xx"]
                },
            },
            "generation": {"mode": "all", "max-examples": FUZZ_EXAMPLES, "database": "none"},
            "phases": {
                "fuzzing": {"extra-data-sources": {"responses": reuse_answers}},
                "coverage": {"extra-data-sources": {"responses": reuse_answers}},
                "examples": {"extra-data-sources": {"responses": reuse_answers}},
                "stateful": {"max-steps": STATEFUL_STEPS},
            },
        }
    )
    return schemathesis.openapi.from_url(f"{base_url}/openapi.json", config=config)


@pytest.fixture(scope="module", params=MAIN_TARGETS, ids=str)
def target(request: pytest.FixtureRequest) -> Target:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def session(target: Target) -> CountingSession:
    return CountingSession(target)


@pytest.fixture
def main_schema(fuzz_platform: FuzzPlatform, target: Target) -> Any:
    return _schema(fuzz_platform, target, reuse_answers=True)


@pytest.fixture
def api_keys_session() -> CountingSession:
    return CountingSession(Target("registry", "api_keys"))


@pytest.fixture
def api_keys_schema(fuzz_platform: FuzzPlatform) -> Any:
    return _schema(fuzz_platform, Target("registry", "api_keys"), reuse_answers=False)


main = schemathesis.pytest.from_fixture("main_schema").exclude(path_regex=API_KEY_PATHS)
api_keys = schemathesis.pytest.from_fixture("api_keys_schema").include(path_regex=API_KEY_PATHS)


def test_linked_operations_statefully(main_schema: Any, session: CountingSession) -> None:
    machine = main_schema.exclude(path_regex=API_KEY_PATHS).as_state_machine()
    failures: list[FailureGroup] = []

    class CheckedMachine(machine):  # type: ignore[misc, valid-type]
        def get_call_kwargs(self, case: schemathesis.Case) -> dict[str, Any]:
            return {"session": session}

        def validate_response(self, *args: Any, **kwargs: Any) -> None:
            try:
                super().validate_response(*args, **kwargs)
            except FailureGroup as failure:
                failures.append(failure)
                raise

    CheckedMachine.rule_order_seed = FUZZ_SEED
    seeded = hypothesis.seed(FUZZ_SEED)(CheckedMachine)
    try:
        seeded.run(settings=main_schema.config.get_hypothesis_settings(phase="stateful"))
    except Flaky:
        # A scenario draws from earlier answers, and a replay meets answers that changed
        # (new ids): Hypothesis then calls it flaky. Every answer was checked as it came,
        # so the failure it was replaying (if any) is the finding, as in schemathesis' CLI.
        if failures:
            raise failures[0] from None


@main.parametrize()
def test_every_operation(case: schemathesis.Case, session: CountingSession) -> None:
    case.call_and_validate(session=session)


@api_keys.parametrize()
def test_api_key_operations(case: schemathesis.Case, api_keys_session: CountingSession) -> None:
    case.call_and_validate(session=api_keys_session)
