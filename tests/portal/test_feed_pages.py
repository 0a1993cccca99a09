"""Feeds: a secret address per company (minted from a page, shown once, stored hashed,
revocable, re-mintable) serving the deadlines (.ics) and the changes (Atom)."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import asyncpg
import httpx
import pytest
from browser import critical_violations, new_page
from icalendar import Calendar
from pages_helpers import check_and_capture, csrf_of, sign_in, signed_in_client
from playwright.async_api import Browser, expect
from portal_stack import PortalStack, artifact_dir

from service_harness import ROOT, eventually

pytestmark = pytest.mark.servers

DEADLINE_POLICY = "yp-office-with-deadline"
ADDRESS = re.compile(r'value="([^"]+)" data-testid="feed-(deadlines|changes)"')
ATOM = "{http://www.w3.org/2005/Atom}"


async def submit_policy_with_deadline(stack: PortalStack) -> None:
    """The Yangpu office policy under another id, its window ending 2027-06-24."""
    text = (ROOT / "catalog" / "yp-new-enterprise-office.yaml").read_text()
    text = text.replace("id: yp-new-enterprise-office", f"id: {DEADLINE_POLICY}", 1)
    text = text.replace(
        "effective: {from: 2024-06-25}", "effective: {from: 2024-06-25, to: 2027-06-24}", 1
    )
    response = await stack.services["ingest"].client.post(
        "/v1/policies", content=text.encode(), headers={"Content-Type": "application/yaml"}
    )
    assert response.status_code in (200, 201), response.text


async def eligible_for_both(stack: PortalStack, key: str) -> None:
    async with stack.services["rules"].as_key(key) as rules:

        async def ready() -> bool:
            response = await rules.get("/v1/eligibility")
            eligible = {
                i["policy_id"]
                for i in response.json().get("items", [])
                if i["status"] == "eligible"
            }
            return {DEADLINE_POLICY, "yp-new-enterprise-office"} <= eligible

        await eventually(ready, timeout=30)


async def mint(client: httpx.AsyncClient) -> dict[str, str]:
    token = csrf_of((await client.get("/feeds")).text)
    minted = await client.post("/feeds/mint", data={"csrf_token": token})
    assert minted.status_code == 201, minted.text
    return {name: address for address, name in ADDRESS.findall(minted.text)}


async def test_feeds_from_minting_to_revocation(stack: PortalStack, browser: Browser) -> None:
    await submit_policy_with_deadline(stack)
    _, key = await stack.company("杨浦日历短剧", established_on="2025-03-01")
    await eligible_for_both(stack, key)
    async with signed_in_client(stack, key) as client, httpx.AsyncClient() as reader:
        assert 'data-testid="feed-state"' in (await client.get("/feeds")).text
        addresses = await mint(client)
        assert set(addresses) == {"deadlines", "changes"}
        assert addresses["deadlines"].endswith("/deadlines.ics")
        token = addresses["deadlines"].split("/feeds/")[1].split("/")[0]
        page = (await client.get("/feeds")).text
        assert token not in page, "the address is shown once only"

        calendar_response = await reader.get(addresses["deadlines"])  # no session: the token
        assert calendar_response.status_code == 200
        assert calendar_response.headers["content-type"].startswith("text/calendar")
        assert key not in calendar_response.text
        events = Calendar.from_ical(calendar_response.content).walk("VEVENT")
        assert [str(e["uid"]) for e in events] == [f"policy-deadline-{DEADLINE_POLICY}@reelpolicy"]
        assert events[0].decoded("dtstart").isoformat() == "2027-06-24"
        assert "杨浦区新设微短剧企业" in str(events[0]["summary"])  # zh-CN, the page's language

        atom_response = await reader.get(addresses["changes"])
        assert atom_response.status_code == 200
        assert atom_response.headers["content-type"].startswith("application/atom+xml")
        entries = ET.fromstring(atom_response.content).findall(f"{ATOM}entry")
        assert len(entries) >= 2  # one change per policy at least: the company became eligible
        ids = [e.findtext(f"{ATOM}id") or "" for e in entries]
        assert all(i.startswith("urn:uuid:") for i in ids)
        assert any("¥3,000,000" in (e.findtext(f"{ATOM}summary") or "") for e in entries)

        conn = await asyncpg.connect(stack.portal_dsn)
        try:
            rows = await conn.fetch("SELECT token_hash, api_key FROM feed_tokens")
        finally:
            await conn.close()
        stored = b"".join(bytes(r["token_hash"]) + bytes(r["api_key"]) for r in rows)
        assert token.encode() not in stored
        assert key.encode() not in stored

        assert (await client.post("/feeds/revoke")).status_code == 403  # no CSRF token
        assert (await reader.get(addresses["deadlines"])).status_code == 200
        revoke_token = csrf_of((await client.get("/feeds")).text)
        revoked = await client.post("/feeds/revoke", data={"csrf_token": revoke_token})
        assert revoked.status_code == 303
        for address in addresses.values():
            assert (await reader.get(address)).status_code == 404

        again = await mint(client)
        assert again["deadlines"] != addresses["deadlines"]
        assert (await reader.get(again["deadlines"])).status_code == 200
        assert (await reader.get(addresses["deadlines"])).status_code == 404  # stays revoked
        newer = await mint(client)  # a new address replaces the live one
        assert (await reader.get(again["changes"])).status_code == 404
        assert (await reader.get(newer["changes"])).status_code == 200
        assert (await reader.get(f"{stack.url}/feeds/{'x' * 43}/deadlines.ics")).status_code == 404
        assert (await client.post("/feeds/mint")).status_code == 403
    await check_and_capture(browser, stack, key, "/feeds", "feeds")
    page = await new_page(browser, width=375)
    await sign_in(page, stack, key)
    await page.goto(f"{stack.url}/feeds")
    await page.click("form[action='/feeds/mint'] button")
    await expect(page.get_by_test_id("feed-deadlines")).to_have_value(
        re.compile(r"/deadlines\.ics$")
    )
    assert await critical_violations(page) == []
    await page.screenshot(path=str(artifact_dir() / "feeds-minted-zh-CN-375.png"), full_page=True)
    await page.context.close()
