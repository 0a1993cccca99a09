"""A one-time sign-in link, end to end in the browser: an operator mints it at the
registry, the company opens it, signs in once, signs out, and the key the link issued
is revoked."""

from __future__ import annotations

import html
import re
from typing import Any

import httpx
import pytest
from browser import critical_violations, new_page
from playwright.async_api import Browser, Page, expect
from portal_stack import PortalStack
from test_portal_sign_in import form_token

from service_harness import eventually

pytestmark = pytest.mark.servers


async def mint_link(stack: PortalStack, enterprise_id: str) -> str:
    """A new link's token (not its ``url``, which carries the registry's configured base,
    not this test portal's address)."""
    minted = await stack.registry.post("/v1/portal-links", json={"enterprise_id": enterprise_id})
    assert minted.status_code == 201, minted.text
    token: str = minted.json()["token"]
    return token


async def link_keys(stack: PortalStack, enterprise_id: str) -> list[dict[str, Any]]:
    """The enterprise's keys a sign-in link issued (the registry labels them)."""
    listed = await stack.registry.get("/v1/api-keys")
    assert listed.status_code == 200, listed.text
    return [
        key
        for key in listed.json()
        if key["enterprise_id"] == enterprise_id and key["label"] == "portal session"
    ]


async def overview_shows(page: Page, name: str) -> None:
    """The overview names the enterprise. Rules learns of the key the link issued by an
    event, so the first view may say "temporarily unavailable": reload until it knows."""

    async def named() -> bool:
        if await page.get_by_role("heading", level=1).text_content() == name:
            return True
        await page.reload()
        return False

    await eventually(named, timeout=30, interval=0.5)


async def test_a_sign_in_link_signs_in_once_and_sign_out_revokes_its_key(
    stack: PortalStack, browser: Browser
) -> None:
    enterprise, _ = await stack.company("杨浦链接登录公司", established_on="2025-03-01")
    token = await mint_link(stack, enterprise["id"])
    link = f"{stack.url}/sign-in/link?token={token}"

    page = await new_page(browser)
    await page.goto(link)
    assert await critical_violations(page) == []
    await page.get_by_role("button", name="继续并登录").click()
    await expect(page).to_have_url(f"{stack.url}/")
    await overview_shows(page, enterprise["name"])
    assert token not in page.url
    assert token not in await page.content()
    [issued] = await link_keys(stack, enterprise["id"])
    assert issued["revoked"] is False

    # the same link a second time, from another browser: used
    other = await new_page(browser)
    await other.goto(link)
    async with other.expect_response(f"{stack.url}/sign-in/link") as second:
        await other.get_by_role("button", name="继续并登录").click()
    assert (await second.value).status == 404
    await expect(other.locator("input[name=api_key]")).to_be_visible()
    await other.context.close()

    await page.get_by_role("button", name="退出登录").click()
    await expect(page).to_have_url(f"{stack.url}/sign-in")
    [after] = await link_keys(stack, enterprise["id"])
    assert after["key_id"] == issued["key_id"]
    assert after["revoked"] is True
    await page.context.close()


async def test_opening_a_link_without_pressing_its_button_does_not_use_it(
    stack: PortalStack,
) -> None:
    """What a mail scanner or a chat app's preview does: GET the link (twice, say)."""
    enterprise, _ = await stack.company("杨浦预取测试公司")
    token = await mint_link(stack, enterprise["id"])
    async with httpx.AsyncClient(base_url=stack.url) as scanner:
        for _ in range(2):
            fetched = await scanner.get("/sign-in/link", params={"token": token})
            assert fetched.status_code == 200
            assert "rp_session" not in fetched.cookies
            assert fetched.headers["referrer-policy"] == "no-referrer"
    assert await link_keys(stack, enterprise["id"]) == []  # nothing redeemed

    async with httpx.AsyncClient(base_url=stack.url) as person:
        page = await person.get("/sign-in/link", params={"token": token})
        form = {"token": token, "csrf_token": form_token(page.text)}
        # a POST without this browser's CSRF token redeems nothing either
        forged = await person.post("/sign-in/link", data={"token": token})
        assert forged.status_code == 403
        signed = await person.post("/sign-in/link", data=form)
        assert signed.status_code == 303
        assert signed.headers["location"] == "/"
        assert "rp_session" in signed.cookies
        # the same button again (its page now carries the session's CSRF token): used
        page = await person.get("/sign-in/link", params={"token": token})
        form = {"token": token, "csrf_token": form_token(page.text)}
        again = await person.post("/sign-in/link", data=form)
        assert again.status_code == 404
    [issued] = await link_keys(stack, enterprise["id"])
    assert issued["revoked"] is False


async def test_the_language_switch_on_a_links_page_comes_back_to_the_same_link(
    stack: PortalStack,
) -> None:
    async with httpx.AsyncClient(base_url=stack.url, follow_redirects=True) as client:
        page = await client.get("/sign-in/link", params={"token": "a-token/with+signs"})
        switch = re.search(r'href="(/lang/en\?next=[^"]+)"', page.text)
        assert switch, page.text
        switched = await client.get(html.unescape(switch.group(1)))
        assert switched.status_code == 200
        assert str(switched.url) == f"{stack.url}/sign-in/link?token=a-token%2Fwith%2Bsigns"
        assert "Continue and sign in" in switched.text
        assert 'value="a-token/with+signs"' in switched.text
