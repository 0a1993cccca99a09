"""The browser signs in with a company's API key and sees its overview (zh-CN first)."""

from __future__ import annotations

import httpx
import pytest
from browser import critical_violations, new_page
from playwright.async_api import Browser, expect
from portal_stack import PortalStack

from service_harness import eventually

pytestmark = pytest.mark.servers


async def results_ready(stack: PortalStack, key: str, expected: int) -> None:
    """Wait until rules has the company's key and results (both arrive as events)."""
    rules = stack.services["rules"].as_key(key)

    async def ready() -> bool:
        response = await rules.get("/v1/eligibility")
        return response.status_code == 200 and len(response.json()["items"]) >= expected

    async with rules:
        await eventually(ready, timeout=30)


async def test_sign_in_with_key_shows_the_yangpu_office_subsidy(
    stack: PortalStack, browser: Browser
) -> None:
    enterprise, key = await stack.company("杨浦短剧有限公司", established_on="2025-03-01")
    await results_ready(stack, key, expected=1)
    page = await new_page(browser)
    await page.goto(f"{stack.url}/")
    await expect(page).to_have_url(f"{stack.url}/sign-in")
    await expect(page.locator("html")).to_have_attribute("lang", "zh-CN")
    assert await critical_violations(page) == []
    await page.fill("input[name=api_key]", key)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{stack.url}/")
    await expect(page.get_by_role("heading", level=1)).to_have_text(enterprise["name"])
    await expect(page.get_by_test_id("total-eligible")).to_contain_text("3,000,000")
    assert key not in await page.content()
    assert await critical_violations(page) == []
    await page.close()


async def test_a_wrong_key_is_refused_and_not_echoed(stack: PortalStack, browser: Browser) -> None:
    page = await new_page(browser)
    await page.goto(f"{stack.url}/sign-in")
    await page.fill("input[name=api_key]", "rp_not_a_key_0123456789")
    await page.click("button[type=submit]")
    await expect(page.get_by_role("alert")).to_be_visible()
    assert "rp_not_a_key_0123456789" not in await page.content()
    await page.close()


async def test_a_post_without_the_csrf_token_is_refused(stack: PortalStack) -> None:
    _, key = await stack.company("杨浦测试二号")
    async with httpx.AsyncClient(base_url=stack.url) as client:
        response = await client.post("/sign-in", data={"api_key": key})
        assert response.status_code == 403
        assert "rp_session" not in response.cookies
