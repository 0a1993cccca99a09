"""Fixtures of the portal's browser tests: the stack (module-wide) and a browser."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from playwright.async_api import Browser, async_playwright
from portal_stack import CHROMIUM_ARGS, PortalStack, chromium_path, portal_stack

from reelpolicy_devstack.servers import EmbeddedBroker, EmbeddedPostgres

POLICIES = ("yp-new-enterprise-office", "sh-guidance-fund-project")


@pytest.fixture(scope="module")
async def stack(
    embedded_postgres: EmbeddedPostgres, embedded_broker: EmbeddedBroker
) -> AsyncIterator[PortalStack]:
    async with portal_stack(
        embedded_postgres.uri(), embedded_broker.bootstrap_servers, policies=POLICIES
    ) as running:
        yield running


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            await launched.close()
