"""The operator's pages: failing endpoints and disabled subscriptions, dead letters, and
the policy simulation (a draft YAML; its impact as a table and an SVG chart)."""

from __future__ import annotations

import re

import pytest
from browser import critical_violations, new_page
from pages_helpers import (
    LOCALES,
    WIDTHS,
    check_and_capture,
    csrf_of,
    key_known,
    sign_in,
    signed_in_client,
)
from playwright.async_api import Browser, expect
from portal_stack import PortalStack, artifact_dir
from test_portal_sign_in import results_ready

from service_harness import ROOT, eventually
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.servers

DRAFT_ID = "yp-new-enterprise-office-draft"


def draft_yaml() -> bytes:
    """The Yangpu office policy under a new id: a policy nobody is eligible for yet."""
    text = (ROOT / "catalog" / "yp-new-enterprise-office.yaml").read_text()
    return text.replace("id: yp-new-enterprise-office", f"id: {DRAFT_ID}", 1).encode()


async def operator_key(stack: PortalStack) -> str:
    issued = await stack.registry.post("/v1/api-keys", json={"role": "operator", "label": "ops"})
    assert issued.status_code == 201, issued.text
    key: str = issued.json()["key"]
    await key_known(stack, key, "notify", "rules")
    return key


async def test_the_operator_simulates_a_draft_policy(stack: PortalStack, browser: Browser) -> None:
    _, company_key = await stack.company("杨浦模拟短剧", established_on="2025-03-01")
    await results_ready(stack, company_key, expected=1)
    key = await operator_key(stack)
    draft = ROOT / "artifacts" / "portal" / f"{DRAFT_ID}.yaml"
    draft.parent.mkdir(parents=True, exist_ok=True)
    draft.write_bytes(draft_yaml())

    for locale in LOCALES:
        for width in WIDTHS:
            page = await new_page(browser, width=width, locale=locale)
            await sign_in(page, stack, key)
            await page.goto(f"{stack.url}/operator/simulate?lang={locale}")
            await page.set_input_files("#draft", str(draft))
            await page.click("form[action='/operator/simulate'] button[type=submit]")
            await expect(page.get_by_test_id("simulation-result")).to_be_visible()
            assert int(await page.get_by_test_id("gained").inner_text()) >= 1
            await expect(page.get_by_test_id("total-payout")).to_contain_text("3,000,000")
            bars = page.locator("[data-testid=chart-subjects] rect")
            assert await bars.count() == 3
            assert float(await bars.first.get_attribute("width") or 0) > 0  # gained
            assert await page.locator("[data-testid=chart-payout] rect").count() >= 1
            assert await critical_violations(page) == []
            await page.screenshot(
                path=str(artifact_dir() / f"operator-simulation-{locale}-{width}.png"),
                full_page=True,
            )
            await page.context.close()


async def test_a_draft_that_is_not_a_policy_is_answered_as_form_errors(
    stack: PortalStack,
) -> None:
    key = await operator_key(stack)
    async with signed_in_client(stack, key) as client:
        token = csrf_of((await client.get("/operator/simulate")).text)

        async def upload(content: bytes) -> str:
            response = await client.post(
                "/operator/simulate",
                data={"csrf_token": token},
                files={"draft": ("draft.yaml", content, "application/yaml")},
            )
            assert response.status_code == 400, response.text
            return response.text

        assert "line 2" in await upload(b"id: x\n  : [unclosed\n")
        assert "草案不是有效的政策文件" in await upload(b"- a list\n- not a mapping\n")
        bad_field = draft_yaml().replace(b"enterprise.region_code", b"enterprise.regoin_code", 1)
        answer = await upload(bad_field)
        assert "regoin_code" in answer  # rules' own words, naming the field
        # a python tag constructs nothing: safe_load refuses it
        assert "python/object" in await upload(b"id: !!python/object/apply:os.system ['true']\n")
        refused = await client.post(
            "/operator/simulate", files={"draft": ("d.yaml", draft_yaml(), "application/yaml")}
        )
        assert refused.status_code == 403


async def test_failing_endpoints_disabled_subscriptions_and_dead_letters(
    stack: PortalStack, browser: Browser
) -> None:
    enterprise, company_key = await stack.company("杨浦失效端点")
    await key_known(stack, company_key, "notify")
    gone = WebhookReceiver(status=410)
    try:
        async with stack.services["notify"].as_key(company_key) as notify:
            created = await notify.post(
                "/v1/subscriptions",
                json={
                    "enterprise_id": enterprise["id"],
                    "channel": "webhook",
                    "url": gone.url,
                    "events": ["eligibility.changed"],
                },
            )
            assert created.status_code == 201, created.text
            subscription_id = created.json()["id"]
            assert (
                await notify.post(f"/v1/subscriptions/{subscription_id}/test")
            ).status_code == 202

            async def disabled() -> bool:
                found = await notify.get(f"/v1/subscriptions/{subscription_id}")
                return found.json()["enabled"] is False

            await eventually(disabled, timeout=30)
        key = await operator_key(stack)
        page = await new_page(browser)
        await sign_in(page, stack, key)
        await page.goto(f"{stack.url}/operator")
        failing = page.get_by_test_id("failing-endpoint").filter(has_text=gone.url)
        await expect(failing).to_contain_text("410")
        disabled_row = page.get_by_test_id("disabled-subscription").filter(has_text=gone.url)
        await expect(disabled_row).to_contain_text(re.compile("已被平台停用"))
        await page.goto(f"{stack.url}/operator/dead-letters")
        await expect(page.get_by_test_id("dead-letters")).to_be_visible()
        await page.context.close()
        for path, name in (
            ("/operator", "operator-endpoints"),
            ("/operator/dead-letters", "operator-dead-letters"),
            ("/operator/simulate", "operator-simulate"),
        ):
            await check_and_capture(browser, stack, key, path, name)
    finally:
        gone.close()


async def test_a_company_session_has_no_operator_pages(stack: PortalStack) -> None:
    _, company_key = await stack.company("杨浦普通公司")
    async with signed_in_client(stack, company_key) as client:
        for path in ("/operator", "/operator/dead-letters", "/operator/simulate"):
            assert (await client.get(path)).status_code == 404, path
