"""Eligibility in the browser: a missing field filled through the form changes the row
in place, a stale form shows the conflict, and another company's records are 404."""

from __future__ import annotations

import pytest
from browser import critical_violations, new_page
from playwright.async_api import Browser, Page, expect
from portal_stack import PortalStack

from service_harness import eventually

pytestmark = pytest.mark.servers

OFFICE = "yp-new-enterprise-office"


async def signed_in(browser: Browser, stack: PortalStack, key: str, **options: object) -> Page:
    page = await new_page(browser, **options)  # type: ignore[arg-type]
    await page.goto(f"{stack.url}/sign-in")
    await page.fill("input[name=api_key]", key)
    await page.click("button[type=submit]")
    await expect(page).to_have_url(f"{stack.url}/")
    return page


async def unknown_until_filled(stack: PortalStack, key: str) -> None:
    """Rules has the company's key and its "information missing" result."""
    async with stack.services["rules"].as_key(key) as rules:

        async def ready() -> bool:
            response = await rules.get("/v1/eligibility")
            items = response.json().get("items", []) if response.status_code == 200 else []
            return any(i["policy_id"] == OFFICE and i["status"] == "unknown" for i in items)

        await eventually(ready, timeout=30)


async def test_filling_a_missing_field_changes_the_row_without_a_reload(
    stack: PortalStack, browser: Browser
) -> None:
    _, key = await stack.company("杨浦新设短剧公司")  # no date of establishment yet
    await unknown_until_filled(stack, key)
    page = await signed_in(browser, stack, key)
    await page.goto(f"{stack.url}/eligibility")
    row = page.locator(f'tr[data-testid="eligibility-row"][data-policy-id="{OFFICE}"]')
    await expect(row).to_have_attribute("data-status", "unknown")
    missing = row.locator('[data-missing-field="enterprise.established_on"] a')
    await expect(missing).to_be_visible()
    await expect(row).to_contain_text("杨浦区新设微短剧企业购房或租房补贴")  # the policy's title
    assert await critical_violations(page) == []
    await page.evaluate("window.stillTheSamePage = true")

    form = await page.context.new_page()  # the form in a second tab; the first stays open
    await form.goto(await missing.evaluate("a => a.href"))
    assert await critical_violations(form) == []
    await form.fill("input[name=value]", "2025-03-01")
    await form.click("main button[type=submit]")
    await expect(form.get_by_role("status")).to_be_visible()

    await expect(row).to_have_attribute("data-status", "eligible", timeout=30_000)
    await expect(row).to_have_attribute("data-amount-cny", "3000000")
    assert await page.evaluate("window.stillTheSamePage") is True
    await row.locator("details.explanation > summary").click()
    choice = row.locator("li.choice")
    await expect(choice).to_have_attribute("data-chosen", "purchase")
    await expect(choice).to_contain_text("购房补贴")
    await expect(choice).to_contain_text("租房补贴")
    await page.context.close()


async def test_a_form_answered_after_the_record_changed_shows_the_conflict(
    stack: PortalStack, browser: Browser
) -> None:
    enterprise, key = await stack.company("杨浦冲突测试公司")
    await unknown_until_filled(stack, key)
    page = await signed_in(browser, stack, key)
    await page.goto(
        f"{stack.url}/eligibility/fill?field=enterprise.established_on"
        f"&subject_id={enterprise['id']}"
    )
    changed = await stack.registry.patch(
        f"/v1/enterprises/{enterprise['id']}", json={"established_on": "2025-05-05"}
    )
    assert changed.status_code == 200, changed.text
    await page.fill("input[name=value]", "2025-03-01")
    await page.click("main button[type=submit]")
    conflict = page.get_by_test_id("conflict")
    await expect(conflict).to_be_visible()
    await expect(conflict).to_contain_text("2025-05-05")
    record = await stack.registry.get(f"/v1/enterprises/{enterprise['id']}")
    assert record.json()["established_on"] == "2025-05-05"  # the stale form wrote nothing
    await page.context.close()


async def test_another_companys_records_are_not_found(stack: PortalStack, browser: Browser) -> None:
    theirs, _ = await stack.company("别家公司", established_on="2025-03-01")
    production = await stack.registry.post(
        "/v1/productions", json={"enterprise_id": theirs["id"], "title": "别家的短剧"}
    )
    assert production.status_code == 201, production.text
    production_id = production.json()["id"]
    mine, key = await stack.company("自家公司", established_on="2025-03-01")
    page = await signed_in(browser, stack, key)
    for path in (
        f"/eligibility?production_id={production_id}",
        f"/eligibility/fill?field=production.budget_cny&subject_id={production_id}",
        f"/eligibility/fill?field=enterprise.established_on&subject_id={theirs['id']}",
    ):
        response = await page.goto(f"{stack.url}{path}")
        assert response is not None
        assert response.status == 404, path
        assert "别家" not in await page.content()
    # the same addresses with the company's own records answer (the check can fail)
    response = await page.goto(
        f"{stack.url}/eligibility/fill?field=enterprise.established_on&subject_id={mine['id']}"
    )
    assert response is not None
    assert response.status == 200
    await page.context.close()
