"""The policy catalog and its filters, a policy's versions with what changed, and
screenshots of the pages in both languages at both widths (saved under artifacts/)."""

from __future__ import annotations

import pytest
from browser import critical_violations, new_page
from playwright.async_api import Browser, Page, expect
from portal_stack import PortalStack, artifact_dir

from service_harness import ROOT, eventually

pytestmark = pytest.mark.servers


async def sign_in(page: Page, stack: PortalStack, key: str) -> None:
    await page.goto(f"{stack.url}/sign-in")
    await page.fill("input[name=api_key]", key)
    await page.click("main button[type=submit]")


async def test_the_catalog_filters_and_a_policys_versions(
    stack: PortalStack, browser: Browser
) -> None:
    _, key = await stack.company("杨浦政策浏览公司", established_on="2025-03-01")
    page = await new_page(browser)
    await sign_in(page, stack, key)
    await page.goto(f"{stack.url}/policies")
    policies = page.get_by_test_id("policy")
    await expect(policies).to_have_count(2)
    await page.select_option("#kind", "office_purchase_subsidy")
    await page.click("main button[type=submit]")
    await expect(policies).to_have_count(1)
    await expect(policies.first).to_have_attribute("data-policy-id", "yp-new-enterprise-office")
    await page.goto(f"{stack.url}/policies?level=municipal")
    await expect(policies).to_have_count(1)
    await expect(policies.first).to_have_attribute("data-policy-id", "sh-guidance-fund-project")
    await page.goto(f"{stack.url}/policies?region=310110")  # Yangpu: its own and Shanghai's
    await expect(policies).to_have_count(2)
    assert await critical_violations(page) == []

    # a second version (the rent subsidy's cap lowered) shows as a plain sentence
    document = (ROOT / "catalog" / "yp-new-enterprise-office.yaml").read_text()
    changed = document.replace("max_amount_cny: 1500000}", "max_amount_cny: 1200000}")
    assert changed != document
    submitted = await stack.services["ingest"].client.post(
        "/v1/policies", content=changed.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert submitted.status_code == 201, submitted.text
    await page.goto(f"{stack.url}/policies/yp-new-enterprise-office?lang=en")
    versions = page.get_by_test_id("policy-version")
    await expect(versions).to_have_count(2)
    await expect(versions.first).to_contain_text(
        "The cap of office rent subsidy is now 1,200,000 yuan (was 1,500,000)."
    )
    await expect(versions.last).to_contain_text("First version published.")
    assert await critical_violations(page) == []
    await page.context.close()


@pytest.mark.parametrize("locale", ["zh-CN", "en"])
@pytest.mark.parametrize("width", [375, 1280])
async def test_screenshots(stack: PortalStack, browser: Browser, locale: str, width: int) -> None:
    _, key = await stack.company("杨浦短剧有限公司", established_on="2025-03-01")
    async with stack.services["rules"].as_key(key) as rules:

        async def ready() -> bool:
            response = await rules.get("/v1/eligibility")
            return response.status_code == 200 and bool(response.json()["items"])

        await eventually(ready, timeout=30)
    page = await new_page(browser, width=width)
    await sign_in(page, stack, key)
    await page.goto(f"{stack.url}/?lang={locale}")
    await expect(page.locator("html")).to_have_attribute("lang", locale)
    total = page.get_by_test_id("total-eligible")
    await expect(total).to_contain_text("3,000,000")
    # nothing wider than the window: the page reflows at 375 px
    overflow = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert overflow is False
    folder = artifact_dir()
    await page.screenshot(path=str(folder / f"overview-{locale}-{width}.png"), full_page=True)
    await page.goto(f"{stack.url}/eligibility")  # the choice is remembered (a cookie)
    await expect(page.locator("html")).to_have_attribute("lang", locale)
    await expect(page.get_by_test_id("eligibility-row").first).to_be_visible()
    overflow = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
    assert overflow is False
    assert await critical_violations(page) == []
    await page.screenshot(path=str(folder / f"eligibility-{locale}-{width}.png"), full_page=True)
    await page.context.close()
