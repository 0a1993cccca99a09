"""The Alerts pages: subscriptions (webhook, DingTalk) and their test deliveries in the
log, pause/resume, a new secret shown once, delete; CSRF on the forms; another
company's subscription is 404."""

from __future__ import annotations

import re

import pytest
from browser import critical_violations, new_page
from pages_helpers import (
    AnsweringReceiver,
    DingTalkRobot,
    check_and_capture,
    csrf_of,
    key_known,
    sign_in,
    signed_in_client,
)
from playwright.async_api import Browser, Locator, Page, expect
from portal_stack import PortalStack
from standardwebhooks import Webhook

from service_harness import eventually
from webhook_receiver import WebhookReceiver

pytestmark = pytest.mark.servers

SUBSCRIPTION_LINK = re.compile(r'href="/alerts/subscriptions/([0-9a-f-]{36})"')


async def new_company(stack: PortalStack, name: str) -> tuple[str, str]:
    enterprise, key = await stack.company(name)
    await key_known(stack, key, "notify")
    return enterprise["id"], key


async def subscribe(
    page: Page, stack: PortalStack, channel: str, url: str, secret: str = ""
) -> str | None:
    """Fill the form; returns the signing secret the next page shows once (a group robot
    has none of notify's: its page opens instead)."""
    await page.goto(f"{stack.url}/alerts")
    await page.check(f"input[name=channel][value={channel}]")
    await page.fill("#url", url)
    if secret:
        await page.fill("#secret", secret)
    await page.click("form[data-testid=new-subscription] button[type=submit]")
    if channel not in ("webhook", "email"):
        await expect(page).to_have_url(
            re.compile(r"/alerts/subscriptions/[0-9a-f-]{36}\?done=created$")
        )
        assert await page.locator("form[action$='/rotate-secret']").count() == 0
        return None
    shown = await page.get_by_test_id("signing-secret").text_content()
    assert shown is not None
    assert shown.startswith("whsec_"), shown
    assert await critical_violations(page) == []
    await page.click("a[href^='/alerts/subscriptions/']")
    return shown


async def see_test_delivery(page: Page, channel: str) -> None:
    """Send a test message from the subscription's page; wait for it in the log."""
    await page.click("form[action$='/test'] button")
    await expect(page.get_by_role("status")).to_be_visible()
    delivered = page.locator(
        "[data-testid=delivery-row][data-event-type=test][data-status=succeeded]"
    )

    async def shown() -> bool:
        await page.reload()
        return await delivered.count() == 1

    await eventually(shown, timeout=30)
    assert await page.get_by_test_id("delivery-row").count() == 1, channel


async def test_a_webhook_subscription_from_creation_to_deletion(
    stack: PortalStack, browser: Browser
) -> None:
    _, key = await new_company(stack, "杨浦提醒一号")
    receiver = WebhookReceiver()
    try:
        page = await new_page(browser)
        await sign_in(page, stack, key)
        secret = await subscribe(page, stack, "webhook", receiver.url)
        assert secret is not None
        assert secret not in await page.content(), "the secret is shown once only"
        await see_test_delivery(page, "webhook")
        request = receiver.requests[0]
        verified = Webhook(secret).verify(request.body, request.headers)
        assert verified["type"] == "test"
        row = page.get_by_test_id("delivery-row")
        assert "200" in (await row.inner_text())
        subscription_path = page.url.split("?")[0].removeprefix(stack.url)

        await check_and_capture(browser, stack, key, "/alerts", "alerts")
        await check_and_capture(browser, stack, key, subscription_path, "alerts-subscription")
        await check_and_capture(browser, stack, key, "/alerts/deliveries", "alerts-deliveries")

        await page.click("form[action$='/pause'] button")
        await expect(page.get_by_test_id("subscription-state")).to_contain_text(
            re.compile("已暂停|Paused")
        )
        await page.click("form[action$='/resume'] button")
        await expect(page.get_by_test_id("subscription-state")).to_contain_text(
            re.compile("有效|Active")
        )
        await page.click("form[action$='/rotate-secret'] button")
        rotated = await page.get_by_test_id("signing-secret").text_content()
        assert rotated
        assert rotated.startswith("whsec_")
        assert rotated != secret
        await page.click("a[href^='/alerts/subscriptions/']")
        await page.click("form[action$='/delete'] button")
        await expect(page).to_have_url(f"{stack.url}/alerts?done=deleted")
        assert await page.get_by_test_id("subscription-row").count() == 0
        await page.context.close()
    finally:
        receiver.close()


async def test_a_failed_delivery_shows_the_answer_and_is_sent_again(
    stack: PortalStack, browser: Browser
) -> None:
    _, key = await new_company(stack, "杨浦重发测试")
    receiver = AnsweringReceiver(status=400, body="接收端：缺少字段 x".encode())
    try:
        page = await new_page(browser)
        await sign_in(page, stack, key)
        await subscribe(page, stack, "webhook", receiver.url)
        await page.click("form[action$='/test'] button")
        failed = page.locator("[data-testid=delivery-row][data-status=failed]")

        async def shown(rows: Locator) -> bool:
            await page.reload()
            return await rows.count() == 1

        await eventually(lambda: shown(failed), timeout=30)
        await expect(failed).to_contain_text("400")
        await expect(failed).to_contain_text("接收端：缺少字段 x")  # the response excerpt
        receiver.status, receiver.body = 200, b"ok"
        await page.goto(f"{stack.url}/alerts/deliveries?status=failed")
        await page.click("[data-testid=delivery-row] form[action$='/replay'] button")
        await expect(page.get_by_role("status")).to_be_visible()
        delivered = page.locator("[data-testid=delivery-row][data-status=succeeded]")
        await page.goto(f"{stack.url}/alerts/deliveries")
        await eventually(lambda: shown(delivered), timeout=30)
        assert receiver.received == 2
        assert await page.get_by_test_id("delivery-row").count() == 1  # the same delivery
        await page.context.close()
    finally:
        receiver.close()


async def test_a_dingtalk_subscription_and_its_signed_test_delivery(
    stack: PortalStack, browser: Browser
) -> None:
    _, key = await new_company(stack, "杨浦钉钉提醒")
    robot = DingTalkRobot(secret="SECportal0123456789abcdef")
    try:
        page = await new_page(browser)
        await sign_in(page, stack, key)
        await subscribe(page, stack, "dingtalk", robot.url, secret=robot.secret)
        assert robot.secret not in await page.content()
        await see_test_delivery(page, "dingtalk")
        assert len(robot.accepted) == 1
        assert robot.refused == 0
        await page.context.close()
    finally:
        robot.close()


async def test_the_alert_forms_refuse_a_post_without_this_sessions_token(
    stack: PortalStack,
) -> None:
    enterprise_id, key = await new_company(stack, "杨浦提醒二号")
    form = {"channel": "webhook", "url": "http://127.0.0.1:9/hook", "events": "test"}
    async with signed_in_client(stack, key) as client:
        refused = await client.post("/alerts/subscriptions", data=form)
        assert refused.status_code == 403
        forged = await client.post("/alerts/subscriptions", data={**form, "csrf_token": "0" * 64})
        assert forged.status_code == 403
        async with signed_in_client(stack, key) as other_browser:
            # a token of another session of the same company does not pass either
            theirs = csrf_of((await other_browser.get("/alerts")).text)
        stolen = await client.post("/alerts/subscriptions", data={**form, "csrf_token": theirs})
        assert stolen.status_code == 403
        for action in ("test", "pause", "resume", "delete", "rotate-secret"):
            response = await client.post(
                f"/alerts/subscriptions/{'0' * 8}-0000-0000-0000-{'0' * 12}/{action}"
            )
            assert response.status_code == 403, action
    async with stack.services["notify"].as_key(key) as notify:
        listed = await notify.get("/v1/subscriptions", params={"enterprise_id": enterprise_id})
        assert listed.json()["items"] == []


async def test_another_companys_subscription_is_not_found(stack: PortalStack) -> None:
    _, key_a = await new_company(stack, "杨浦提醒甲")
    _, key_b = await new_company(stack, "杨浦提醒乙")
    async with signed_in_client(stack, key_a) as a:
        token = csrf_of((await a.get("/alerts")).text)
        created = await a.post(
            "/alerts/subscriptions",
            data={
                "csrf_token": token,
                "channel": "webhook",
                "url": "http://127.0.0.1:9/hook",
                "events": ["eligibility.changed"],
            },
        )
        assert created.status_code == 201, created.text
        found = SUBSCRIPTION_LINK.search(created.text)
        assert found
        subscription_id = found.group(1)
        async with signed_in_client(stack, key_b) as b:
            token_b = csrf_of((await b.get("/alerts")).text)
            page = await b.get(f"/alerts/subscriptions/{subscription_id}")
            assert page.status_code == 404
            assert subscription_id not in (await b.get("/alerts")).text
            for action in ("test", "pause", "delete", "rotate-secret"):
                response = await b.post(
                    f"/alerts/subscriptions/{subscription_id}/{action}",
                    data={"csrf_token": token_b},
                )
                assert response.status_code == 404, action
        still = await a.get(f"/alerts/subscriptions/{subscription_id}")
        assert still.status_code == 200
        assert "有效" in still.text  # not paused by the other company


async def test_an_operator_session_has_no_company_alerts(stack: PortalStack) -> None:
    issued = await stack.registry.post("/v1/api-keys", json={"role": "operator", "label": "ops"})
    assert issued.status_code == 201, issued.text
    async with signed_in_client(stack, issued.json()["key"]) as operator:
        assert (await operator.get("/alerts")).status_code == 404
