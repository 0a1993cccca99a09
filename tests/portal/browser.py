"""Playwright (async) on Debian's Chromium, and axe-core injected into pages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

from playwright.async_api import Browser, Page

from service_harness import ROOT

AXE_PACKAGE = Path(__file__).resolve().parent / "axe"
"""package.json + package-lock.json pinning axe-core."""
AXE_CACHE = ROOT / ".tools" / "axe"
INSTALL_NODE = (
    "node and npm install axe-core for the accessibility check: apt-get install nodejs npm"
    " (.ci/run installs them when missing)"
)


def axe_script() -> Path:
    """axe.min.js, installed (npm ci) into .tools/axe once per lock file."""
    npm = shutil.which("npm")
    assert npm, INSTALL_NODE
    lock = (AXE_PACKAGE / "package-lock.json").read_bytes()
    installed = AXE_CACHE / "package-lock.json"
    script = AXE_CACHE / "node_modules" / "axe-core" / "axe.min.js"
    if not (script.is_file() and installed.exists() and installed.read_bytes() == lock):
        if AXE_CACHE.exists():
            shutil.rmtree(AXE_CACHE)
        AXE_CACHE.mkdir(parents=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(AXE_PACKAGE / name, AXE_CACHE / name)
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund", "--ignore-scripts"],
            cwd=AXE_CACHE,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, f"npm ci of axe-core failed:\n{done.stdout}{done.stderr}"
    return script


async def critical_violations(page: Page) -> list[dict[str, Any]]:
    """axe-core's violations of impact "critical" on the page as it is now."""
    await page.add_script_tag(path=str(axe_script()))
    result: dict[str, Any] = await page.evaluate("async () => await axe.run(document)")
    return [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]]}
        for v in result["violations"]
        if v.get("impact") == "critical"
    ]


async def new_page(browser: Browser, *, width: int = 1280, locale: str = "zh-CN") -> Page:
    """A page in a fresh context (its own cookies). The portal's CSP forbids inline
    scripts, axe-core is injected as one: the test context bypasses CSP for that."""
    context = await browser.new_context(
        viewport={"width": width, "height": 900}, bypass_csp=True, locale=locale
    )
    return await context.new_page()
