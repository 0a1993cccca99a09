"""Helpers of the Alerts, Feeds and operator page tests: signing in (browser and
httpx), a DingTalk robot stand-in, the accessibility check and screenshots."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import httpx
from browser import critical_violations, new_page
from playwright.async_api import Browser, Page, expect
from portal_stack import PortalStack, artifact_dir

from service_harness import eventually

WIDTHS = (375, 1280)
LOCALES = ("zh-CN", "en")
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


async def sign_in(page: Page, stack: PortalStack, key: str) -> None:
    await page.goto(f"{stack.url}/sign-in")
    await page.fill("input[name=api_key]", key)
    await page.click("form[action='/sign-in'] button[type=submit]")
    await expect(page).to_have_url(f"{stack.url}/")


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@asynccontextmanager
async def signed_in_client(stack: PortalStack, key: str) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client with a portal session of ``key`` (signed in through the form)."""
    async with httpx.AsyncClient(base_url=stack.url) as client:
        form = await client.get("/sign-in")
        done = await client.post(
            "/sign-in", data={"api_key": key, "csrf_token": csrf_of(form.text)}
        )
        assert done.status_code == 303, done.text
        yield client


async def check_and_capture(
    browser: Browser, stack: PortalStack, key: str, path: str, name: str
) -> None:
    """The page in zh-CN and en at 375 and 1280 px: no critical axe-core violation, and a
    full-page screenshot of each saved in artifacts/portal/."""
    for locale in LOCALES:
        for width in WIDTHS:
            page = await new_page(browser, width=width, locale=locale)
            await sign_in(page, stack, key)
            await page.goto(f"{stack.url}{path}{'&' if '?' in path else '?'}lang={locale}")
            await expect(page.locator("html")).to_have_attribute("lang", locale)
            violations = await critical_violations(page)
            assert violations == [], f"{path} ({locale}, {width} px): {violations}"
            await page.screenshot(
                path=str(artifact_dir() / f"{name}-{locale}-{width}.png"), full_page=True
            )
            await page.context.close()


@dataclass
class DingTalkRobot:
    """A DingTalk group robot on 127.0.0.1: checks ``timestamp`` + ``sign`` as DingTalk
    documents them (HmacSHA256 of "timestamp\\nsecret" keyed by the secret, base64, in
    the query) and answers as DingTalk does: 200 with ``errcode`` 0, or 310000."""

    secret: str
    accepted: list[dict[str, object]] = field(default_factory=list)
    refused: int = 0

    def __post_init__(self) -> None:
        robot = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ok = robot.signature_ok(self.path)
                if ok:
                    robot.accepted.append(json.loads(body))
                else:
                    robot.refused += 1
                answer = (
                    {"errcode": 0, "errmsg": "ok"}
                    if ok
                    else {
                        "errcode": 310000,
                        "errmsg": "sign not match",
                    }
                )
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def signature_ok(self, target: str) -> bool:
        query = {k: v[0] for k, v in parse_qs(urlsplit(target).query).items()}
        stamp, sign = query.get("timestamp", ""), query.get("sign", "")
        if not stamp.isdigit() or abs(int(stamp) - time.time() * 1000) > 3600 * 1000:
            return False
        mac = hmac.new(self.secret.encode(), f"{stamp}\n{self.secret}".encode(), hashlib.sha256)
        return hmac.compare_digest(base64.b64encode(mac.digest()).decode(), sign)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/robot/send?access_token=test"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


async def key_known(stack: PortalStack, key: str, *services: str) -> None:
    """Wait until ``services`` accept ``key`` (registry's api_key events reach them)."""
    for name in services:
        client = stack.services[name].as_key(key)
        path = {"notify": "/v1/subscriptions", "rules": "/v1/eligibility"}.get(name, "/v1/policies")

        async def accepted(client: httpx.AsyncClient = client, path: str = path) -> bool:
            return (await client.get(path)).status_code != 401  # 401: key not known yet

        async with client:
            await eventually(accepted, timeout=30)


@dataclass
class AnsweringReceiver:
    """A webhook receiver whose answer (status and body) the test sets."""

    status: int = 200
    body: bytes = b""
    received: int = 0

    def __post_init__(self) -> None:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received += 1
                self.send_response(receiver.status)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(receiver.body)))
                self.end_headers()
                self.wfile.write(receiver.body)

            def log_message(self, *_: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
