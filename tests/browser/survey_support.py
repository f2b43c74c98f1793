"""What the survey pages' browser tests need: ``make up``'s one process with its demo on a fresh database and
stream prefix (the county's survey is open now), the system's Chromium through Playwright, and axe-core
(axe-playwright-python bundles it) with the WCAG 2.1 A/AA rules."""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from civic.devservers import free_port
from tests.deploy.gateway import ADMIN_URL, FAST_SETTINGS, REDIS_URL, ROOT, _with_database
from tests.support import drop_test_state

CHROMIUM = os.environ.get("CIVIC_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WCAG = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
DEMO_SURVEY = "/umfrage/kreis-dithmarschen/dithmarschen-digital"


@dataclass
class Running:
    base_url: str
    log: Path

    def logs(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])


def chromium_or_skip() -> str:
    found = shutil.which(CHROMIUM) or (CHROMIUM if Path(CHROMIUM).exists() else None)
    if found is None:
        pytest.skip(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.skip("playwright is not installed")
    return found


async def running_with_demo(tmp_path: Path) -> AsyncIterator[Running]:
    database = f"civic_web_{secrets.token_hex(4)}"
    prefix = f"websv{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    port, smtp_port = free_port(), free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIVIC_")},
        **FAST_SETTINGS,
        "DATABASE_URL": _with_database(ADMIN_URL, database),
        "REDIS_URL": REDIS_URL,
        "CIVIC_STREAM_PREFIX": prefix,
        "CIVIC_STATE_DIR": str(tmp_path / "state"),
        "CIVIC_PUBLIC_BASE_URL": base_url,
        "CIVIC_SURVEYS_TICK_SECONDS": "0.2",
        "PYTHONUNBUFFERED": "1",
    }
    log = tmp_path / "civic-up.log"
    argv = [sys.executable, "-m", "civic.up", "--port", str(port), "--smtp-port", str(smtp_port)]
    process = _start(argv, env, log)
    running = Running(base_url, log)
    try:
        await _wait_for_demo(base_url, process, running)
        yield running
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()
                await asyncio.to_thread(process.wait, 5)
        await drop_test_state(ADMIN_URL, database, REDIS_URL, prefix)


def _start(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(argv, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)


async def _wait_for_demo(base_url: str, process: subprocess.Popen[bytes], running: Running) -> None:
    """Until the demo survey's page offers to begin (the demo is loaded and the clock loop opened it)."""
    deadline = time.monotonic() + 180
    last = ""
    async with httpx.AsyncClient(base_url=base_url, timeout=5) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(f"civic.up exited with {process.returncode}:\n{running.logs()}")
            try:
                r = await client.get(DEMO_SURVEY)
                if r.status_code == 200 and "Umfrage beginnen" in r.text:
                    return
                last = f"{r.status_code}"
            except httpx.HTTPError as exc:
                last = repr(exc)
            await asyncio.sleep(0.2)
    raise AssertionError(f"the demo survey did not open ({last}):\n{running.logs()}")


async def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's WCAG 2.1 A/AA violations on the page as it is now."""
    from axe_playwright_python.async_playwright import Axe

    results = await Axe().run(page, options={"runOnly": {"type": "tag", "values": WCAG}})
    violations: list[dict[str, Any]] = results.response["violations"]
    return violations


async def new_context(browser: Any, *, javascript: bool, **options: Any) -> Any:
    """A browser context that remembers whether it runs JavaScript (axe needs to know)."""
    context = await browser.new_context(java_script_enabled=javascript, **options)
    context.civic_javascript = javascript
    return context


async def _same_page_with_script(page: Any) -> Any:
    """axe runs as script; a page without JavaScript is checked as a copy of its HTML, served at its own
    address (so its style sheets load as they did) in a context with JavaScript, without the page's scripts."""
    import re

    html = re.sub(r"<script\b[^>]*>.*?</script>", "", await page.content(), flags=re.S)
    context = await page.context.browser.new_context(viewport=page.viewport_size)
    copy = await context.new_page()
    url = page.url.split("#")[0]

    async def fulfil(route: Any) -> None:
        await route.fulfill(status=200, content_type="text/html; charset=utf-8", body=html)

    await copy.route(url, fulfil)
    await copy.goto(url)
    return copy


async def assert_accessible(page: Any, what: str) -> None:
    if not getattr(page.context, "civic_javascript", True):
        copy = await _same_page_with_script(page)
        try:
            violations = await axe_violations(copy)
        finally:
            await copy.context.close()
    else:
        violations = await axe_violations(page)
    report = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:5], v["help"]) for v in violations]
    assert violations == [], f"axe on {what} ({page.url}): {report}"
