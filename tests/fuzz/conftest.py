"""Fixtures of the fuzz suite: the platform (see ``fuzz_platform``) and the summary."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fuzz_platform import FUZZ_EXAMPLES, FUZZ_SEED, TALLY, FuzzPlatform, start_platform

from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres
from reelpolicy_devstack.services import SERVICES


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TALLY.requests:
        return
    terminalreporter.section("fuzz: requests sent")
    for service in SERVICES:
        keys = ", ".join(
            f"{key} {count} ({TALLY.accepted[(name, key)]} 2xx)"
            for (name, key), count in sorted(TALLY.requests.items())
            if name == service
        )
        if keys:
            total = TALLY.per_service()[service]
            terminalreporter.write_line(f"{service:<9} {total:>6} requests ({keys})")
    terminalreporter.write_line(
        f"seed {FUZZ_SEED}, {FUZZ_EXAMPLES} examples per operation"
        f" (make fuzz SEED={FUZZ_SEED} EXAMPLES={FUZZ_EXAMPLES} repeats this run)"
    )
    terminalreporter.write_line(f"service logs in {TALLY.log_dir}")


@pytest.fixture(scope="module")
def fuzz_platform(
    embedded_postgres: EmbeddedPostgres,
    embedded_broker: EmbeddedBroker,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FuzzPlatform]:
    with start_platform(
        admin_uri=embedded_postgres.uri(),
        bootstrap=embedded_broker.bootstrap_servers,
        log_dir=tmp_path_factory.mktemp("fuzz-logs"),
        suffix=tmp_path_factory.getbasetemp().name[-6:].replace("-", "_"),
    ) as platform:
        yield platform
