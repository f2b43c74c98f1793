"""What browser tests share (web-core's and the survey pages'): Chromium through Playwright, axe-core checks,
a civic in one process (``python -m civic.up``) with its own database, stream prefix and SMTP sink, and staff
set-up through the APIs.

- ``chromium_path()`` finds the system's Chromium (Debian's ``chromium``; Playwright's own download cannot reach
  its servers here); the ``browser`` fixture skips with the reason naming what is missing.
- ``new_page(browser, javascript=..., phone=...)``: a fresh context (own cookies), German, Berlin time; a phone is
  360 x 740 CSS pixels with touch.
- ``assert_accessible(page, state)``: axe-core (bundled by axe-playwright-python) with the WCAG 2.1 A/AA rules;
  any violation fails with axe's report naming the page state.
- ``assert_reflows(page)``: nothing wider than the viewport (WCAG 1.4.10 at 320 CSS pixels).
- ``running_civic(tmp_path, env)`` -> ``Civic`` (``base_url``, ``wait_for_mail(address, subject_start)`` reading the
  SMTP sink's folder); tests/browser/conftest.py offers it as the module-scoped ``civic`` fixture and ``browser``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import asyncpg

from civic.devservers import free_port
from tests.mail import MailFolder
from tests.support import drop_test_state, eventually
from tests.up import civic_up, wait_ready

ROOT = Path(__file__).resolve().parents[2]
ADMIN_URL = os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
WCAG_21_AA = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1100, "height": 900}


def chromium_path() -> str | None:
    for candidate in ("/usr/bin/chromium", "/usr/bin/chromium-browser"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("chromium") or shutil.which("chromium-browser")


#: Contexts made with JavaScript off: axe-core needs it, so their pages are checked in a twin (``assert_accessible``).
_WITHOUT_JS: weakref.WeakSet[Any] = weakref.WeakSet()


async def new_page(browser: Any, *, javascript: bool = True, phone: bool = False) -> Any:
    context = await browser.new_context(
        java_script_enabled=javascript,
        viewport=PHONE if phone else DESKTOP,
        is_mobile=phone,
        has_touch=phone,
        locale="de-DE",
        timezone_id="Europe/Berlin",
    )
    if not javascript:
        _WITHOUT_JS.add(context)
    return await context.new_page()


async def assert_accessible(page: Any, state: str) -> None:
    """Zero axe-core violations of the WCAG 2.1 A and AA rules on the page as it is now."""
    from axe_playwright_python.async_playwright import Axe

    options = {"runOnly": {"type": "tag", "values": WCAG_21_AA}}
    if page.context not in _WITHOUT_JS:
        results = await Axe().run(page, options=options)
    else:
        # axe-core runs as script: the page as this browser got it (also a POST's answer) is served once more,
        # at its own address so its CSS and images load, to a twin with JavaScript and the same viewport.
        html = await page.content()
        twin = await page.context.browser.new_context(viewport=page.viewport_size, locale="de-DE")
        try:
            mirror = await twin.new_page()
            await mirror.route(page.url, lambda route: route.fulfill(body=html, content_type="text/html"))
            await mirror.goto(page.url)
            results = await Axe().run(mirror, options=options)
        finally:
            await twin.close()
    assert results.violations_count == 0, f"{state} ({page.url}):\n{results.generate_report()}"


async def assert_reflows(page: Any) -> None:
    """No horizontal scrolling at this viewport (content reflows)."""
    wide = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert wide <= 1, f"{page.url} is {wide}px wider than the viewport"


@dataclass
class Civic:
    """civic as ``make up`` runs it (services and web in one process), for a browser."""

    base_url: str
    mail: MailFolder
    log: Path

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.mail.read() if address in str(m["To"])]

    async def wait_for_mail(self, address: str, subject_starts: str, timeout: float = 30) -> EmailMessage:
        """The first mail to ``address`` whose subject starts so, waited for (it comes through the bus)."""

        async def probe() -> EmailMessage | None:
            return next((m for m in self.mails_to(address) if str(m["Subject"]).startswith(subject_starts)), None)

        found: EmailMessage = await eventually(probe, timeout=timeout, interval=0.2, what=f"{subject_starts} mail")
        return found

    def logs(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-60:])


@asynccontextmanager
async def running_civic(tmp_path: Path, env: dict[str, str] | None = None) -> AsyncIterator[Civic]:
    """``python -m civic.up --no-demo`` on free ports with a fresh database and stream prefix; stopped after."""
    database = f"civic_browser_{secrets.token_hex(4)}"
    prefix = f"browser{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN_URL)
    try:
        await admin.execute(f'create database "{database}"')
    finally:
        await admin.close()
    database_url = ADMIN_URL.rsplit("/", 1)[0] + f"/{database}"
    port, smtp_port = free_port(), free_port()
    state = tmp_path / "state"
    process_env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("CIVIC_")},
        "DATABASE_URL": database_url,
        "REDIS_URL": REDIS_URL,
        "CIVIC_STREAM_PREFIX": prefix,
        "CIVIC_STATE_DIR": str(state),
        "CIVIC_CONSUMER_BLOCK_MS": "100",
        "CIVIC_RELAY_POLL_SECONDS": "0.2",
        "CIVIC_NOTIFICATIONS_SENDER_POLL_SECONDS": "0.2",
        "CIVIC_LOG_JSON": "false",
        "PYTHONUNBUFFERED": "1",
        **(env or {}),
    }
    log = tmp_path / "civic-up.log"
    args = ["--no-demo", "--port", str(port), "--smtp-port", str(smtp_port)]
    try:
        async with civic_up(args, process_env, log) as process:
            civic = Civic(f"http://127.0.0.1:{port}", MailFolder(state / "mail"), log)
            await wait_ready(civic.base_url, process, civic.logs, timeout=90)
            yield civic
    finally:
        await drop_test_state(ADMIN_URL, database, REDIS_URL, prefix)
