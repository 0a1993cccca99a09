"""The browser signs in with a company's API key and sees its overview (zh-CN first)."""

from __future__ import annotations

import re

import asyncpg
import httpx
import pytest
from browser import critical_violations, new_page
from playwright.async_api import Browser, expect
from portal_stack import PortalStack
from prometheus_client import REGISTRY

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


def sign_ins() -> dict[str, float]:
    """reelpolicy_portal_sign_ins_total by outcome (the portal runs in this process)."""
    return {
        outcome: REGISTRY.get_sample_value("reelpolicy_portal_sign_ins_total", {"outcome": outcome})
        or 0.0
        for outcome in ("signed_in", "refused", "limited")
    }


async def test_failed_key_sign_ins_are_limited_per_client_address(stack: PortalStack) -> None:
    """Ten failures from one address within the window: the next attempt, even with the
    right key, is answered 429 with Retry-After; another address still signs in. Each
    outcome is counted for the alert on many 429s.
    (The test portal's uvicorn trusts X-Forwarded-For from 127.0.0.1, its default.)"""
    _, key = await stack.company("杨浦限流测试")
    before = sign_ins()
    limited = {"X-Forwarded-For": "203.0.113.7"}
    async with httpx.AsyncClient(base_url=stack.url, headers=limited) as guesser:
        token = form_token((await guesser.get("/sign-in")).text)
        for attempt in range(10):
            wrong = await guesser.post(
                "/sign-in", data={"api_key": f"rp_guess_{attempt}", "csrf_token": token}
            )
            assert wrong.status_code == 401, attempt
        refused = await guesser.post("/sign-in", data={"api_key": key, "csrf_token": token})
        assert refused.status_code == 429
        assert 0 < int(refused.headers["retry-after"]) <= 900
        assert "rp_session" not in refused.cookies
        assert "分钟后重试" in refused.text
    other = {"X-Forwarded-For": "203.0.113.8"}
    async with httpx.AsyncClient(base_url=stack.url, headers=other) as colleague:
        token = form_token((await colleague.get("/sign-in")).text)
        signed = await colleague.post("/sign-in", data={"api_key": key, "csrf_token": token})
        assert signed.status_code == 303
    after = sign_ins()
    assert {outcome: after[outcome] - before[outcome] for outcome in after} == {
        "signed_in": 1,
        "refused": 10,
        "limited": 1,
    }


def form_token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, "the page has no CSRF token"
    return found.group(1)


async def test_the_session_cookie_and_store_and_sign_out(stack: PortalStack) -> None:
    enterprise, key = await stack.company("杨浦会话测试", established_on="2025-03-01")
    await results_ready(stack, key, expected=1)
    async with httpx.AsyncClient(base_url=stack.url) as client:
        page = await client.get("/sign-in")
        signed = await client.post(
            "/sign-in", data={"api_key": key, "csrf_token": form_token(page.text)}
        )
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"]
        assert cookie.startswith("rp_session=")
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert "Secure" not in cookie  # PORTAL_SECURE_COOKIES is off in the tests
        overview = await client.get("/")
        assert overview.status_code == 200
        assert enterprise["name"] in overview.text
        assert key not in overview.text

        conn = await asyncpg.connect(stack.portal_dsn)
        try:
            stored = await conn.fetchrow(
                "SELECT api_key FROM sessions WHERE enterprise_id = $1", enterprise["id"]
            )
            assert stored is not None
            assert key.encode() not in bytes(stored["api_key"])  # encrypted at rest
            # a tampered cookie opens nothing
            session_cookie = client.cookies["rp_session"]
            async with httpx.AsyncClient(base_url=stack.url) as forger:
                forger.cookies.set("rp_session", session_cookie[:-2] + "xx")
                assert (await forger.get("/")).status_code == 303

            out = await client.post("/sign-out", data={"csrf_token": form_token(overview.text)})
            assert out.status_code == 303
            left = "SELECT count(*) FROM sessions WHERE enterprise_id = $1"
            assert await conn.fetchval(left, enterprise["id"]) == 0
        finally:
            await conn.close()
        # the old cookie, replayed, no longer opens the overview
        async with httpx.AsyncClient(base_url=stack.url) as replay:
            replay.cookies.set("rp_session", session_cookie)
            again = await replay.get("/")
            assert again.status_code == 303
            assert again.headers["location"] == "/sign-in"


async def test_an_unknown_sign_in_link_signs_no_one_in(stack: PortalStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        missing = await client.get("/sign-in/link")
        assert missing.status_code == 404
        assert 'name="api_key"' in missing.text  # the key form is offered instead
        page = await client.get("/sign-in/link?token=not-a-token")
        assert page.status_code == 200  # the button, which alone redeems
        response = await client.post(
            "/sign-in/link", data={"token": "not-a-token", "csrf_token": form_token(page.text)}
        )
        assert response.status_code == 404
        assert "rp_session" not in response.cookies
        assert 'name="api_key"' in response.text


async def test_the_language_switch_goes_back_only_to_this_site(stack: PortalStack) -> None:
    async with httpx.AsyncClient(base_url=stack.url) as client:
        switched = await client.get("/lang/en?next=/policies")
        assert switched.status_code == 303
        assert switched.headers["location"] == "/policies"
        assert switched.cookies["rp_lang"] == "en"
        page = await client.get("/sign-in")
        assert '<html lang="en">' in page.text
        assert "Sign in" in page.text
        for elsewhere in ("//evil.example/", "/\\evil.example/", "https://evil.example/"):
            response = await client.get("/lang/zh-CN", params={"next": elsewhere})
            assert response.headers["location"] == "/", elsewhere
        assert (await client.get("/lang/fr")).status_code == 404


async def signed_in_client(stack: PortalStack, key: str) -> tuple[httpx.AsyncClient, str]:
    client = httpx.AsyncClient(base_url=stack.url)
    page = await client.get("/sign-in")
    signed = await client.post(
        "/sign-in", data={"api_key": key, "csrf_token": form_token(page.text)}
    )
    assert signed.status_code == 303
    # any page carries the session's token; this one asks only the registry
    page = await client.get("/sign-in")
    return client, form_token(page.text)


async def test_a_bad_value_or_another_companys_record_is_refused_by_the_fill_form(
    stack: PortalStack,
) -> None:
    theirs, _ = await stack.company("别家公司二")
    mine, key = await stack.company("自家公司二")
    client, token = await signed_in_client(stack, key)
    try:
        form = await client.get(
            "/eligibility/fill",
            params={"field": "enterprise.established_on", "subject_id": mine["id"]},
        )
        etag = re.search(r'name="etag" value="([^"]+)"', form.text)
        assert etag, form.text
        fields = {"csrf_token": token, "field": "enterprise.established_on", "etag": etag.group(1)}
        bad = await client.post(
            "/eligibility/fill", data={**fields, "subject_id": mine["id"], "value": "2025-13-01"}
        )
        assert bad.status_code == 400
        assert "日期（年-月-日）" in bad.text  # what the field takes, in the page's language
        theirs_too = await client.post(
            "/eligibility/fill", data={**fields, "subject_id": theirs["id"], "value": "2025-03-01"}
        )
        assert theirs_too.status_code == 404
        unknown_field = await client.post(
            "/eligibility/fill",
            data={**fields, "field": "enterprise.name", "subject_id": mine["id"], "value": "x"},
        )
        assert unknown_field.status_code == 404
    finally:
        await client.aclose()
    for enterprise in (mine, theirs):
        record = await stack.registry.get(f"/v1/enterprises/{enterprise['id']}")
        assert record.json()["established_on"] is None  # nothing was written
