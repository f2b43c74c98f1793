"""The console's webhook and dead-letter pages in a real Chromium against civic in one process.

Staff create a webhook (after a refused empty form) pointing at a local receiver that fails, see the failed
delivery, send it again once the receiver works and see it delivered, then delete the endpoint; an operator
(``admin``) sees a dead letter of the bus, fails to retry it (it does not parse) and drops it. On a desktop and a
phone, axe-core (WCAG 2.1 A/AA) on every page state, without JavaScript (the pages need none). With
``CIVIC_DOCS_SCREENSHOTS=1`` the desktop run renews docs/img/console-webhooks.png.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis

from shared.bus.streams import Keys
from shared.contracts.registry import REGISTRY
from tests.browser.conftest import TENANT, TENANTS
from tests.browser.support import REDIS_URL, Civic, assert_accessible, assert_reflows, new_page, running_civic
from tests.console_support import sign_in_locally_page
from tests.support import eventually, staff_headers

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console-webhooks.png"


class Receiver:
    """The receiving system: answers ``status`` (500 until the test repairs it), counting requests."""

    def __init__(self) -> None:
        self.status = 500
        self.requests = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("content-length") or 0))
                receiver.requests += 1
                self.send_response(receiver.status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    rx = Receiver()
    try:
        yield rx
    finally:
        rx.close()


PREFIX = f"browserops{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
async def civic(tmp_path_factory: pytest.TempPathFactory, receiver: Receiver) -> AsyncIterator[Civic]:
    """civic that may reach the receiver, with long webhook retries (sending again is the page's), on a stream
    prefix the test knows (to put a malformed entry on a stream)."""
    env = {
        "CIVIC_WEB_TENANTS": TENANTS,
        "CIVIC_STREAM_PREFIX": PREFIX,
        "CIVIC_NOTIFICATIONS_ALLOW_PRIVATE_TARGETS": json.dumps([f"127.0.0.1/32#{receiver.port}"]),
        "CIVIC_NOTIFICATIONS_WEBHOOK_RETRY_SCHEDULE": "[3600]",
    }
    try:
        async with running_civic(tmp_path_factory.mktemp("civic"), env) as c:
            yield c
    finally:
        # running_civic removes its own prefix's keys; this module chose its own prefix.
        redis = aioredis.Redis.from_url(REDIS_URL)
        try:
            keys = [k async for k in redis.scan_iter(f"{PREFIX}:*", count=1000)]
            if keys:
                await redis.delete(*keys)
        finally:
            await redis.aclose()


async def checked(page: Any, state: str, phone: bool) -> None:
    await assert_accessible(page, state)
    if phone:
        await assert_reflows(page)


async def main_text(page: Any) -> str:
    text: str = await page.locator("main").inner_text()
    return text


async def publish_meeting(civic: Civic, title: str) -> None:
    starts = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff_headers(TENANT), timeout=10) as api:
        r = await api.post(
            "/api/registration/staff/meetings",
            json={
                "title": title,
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": 30,
            },
        )
        assert r.status_code == 201, r.text
        published = await api.post(f"/api/registration/staff/meetings/{r.json()['id']}/publish")
        assert published.status_code == 200, published.text


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_webhook_failure_sent_again_and_deleted(
    civic: Civic, browser: Any, receiver: Receiver, phone: bool
) -> None:
    receiver.status = 500
    page = await new_page(browser, javascript=False, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "staff")
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/benachrichtigungen")
    await checked(page, "notifications", phone)
    await page.get_by_role("link", name="Zu den Webhooks").click()
    await page.wait_for_load_state()
    await checked(page, "webhooks list", phone)

    await page.get_by_role("link", name="Neuer Webhook").click()
    await page.wait_for_load_state()
    await checked(page, "new webhook form", phone)
    await page.get_by_role("button", name="Webhook anlegen").click()
    await page.wait_for_load_state()
    summary = page.get_by_role("alert")
    assert await summary.get_by_role("link", name="Bitte geben Sie die Adresse an.").get_attribute("href") == "#url"
    assert (await page.title()).startswith("Fehler:")
    await checked(page, "new webhook form with errors", phone)

    url = f"http://127.0.0.1:{receiver.port}/{'telefon' if phone else 'rechner'}"
    await page.get_by_label("Adresse (URL)").fill(url)
    await page.get_by_label("Alle Ereignisse von Anmeldungen").check()
    await page.get_by_label("Beschreibung").fill("Stadtteil-App Nord")
    await page.get_by_role("button", name="Webhook anlegen").click()
    await page.wait_for_load_state()
    assert (await page.locator("#secret").inner_text()).startswith("whsec_")
    await checked(page, "webhook created, secret shown once", phone)
    await page.get_by_role("link", name="Zum Webhook").click()
    await page.wait_for_load_state()
    endpoint = page.url
    await checked(page, "webhook without deliveries", phone)

    before = receiver.requests
    await publish_meeting(civic, f"Stadtteilrunde ({'Telefon' if phone else 'Rechner'})")

    async def failed() -> bool:
        await page.goto(endpoint)
        return "fehlgeschlagen, nächster Versuch" in await main_text(page)

    await eventually(failed, timeout=30, interval=0.5, what="the failed delivery")
    assert receiver.requests == before + 1
    assert "500" in await page.get_by_role("table").inner_text()
    await checked(page, "webhook with a failed delivery", phone)
    await page.get_by_role("link", name="Nur Fehler").click()
    await page.wait_for_load_state()
    await checked(page, "failures only", phone)

    receiver.status = 200
    await page.get_by_role("button", name="Erneut senden").click()
    await page.wait_for_load_state()
    assert "Die Zustellung wird erneut gesendet." in await main_text(page)
    await checked(page, "delivery sent again", phone)

    async def sent() -> bool:
        await page.goto(endpoint)
        return "1 zugestellt, 0 fehlgeschlagen" in await main_text(page)

    await eventually(sent, timeout=30, interval=0.5, what="the delivery sent")
    assert "erneut gesendet: 1-mal" in await page.get_by_role("table").inner_text()
    await checked(page, "webhook with the delivery sent", phone)
    if not phone and os.environ.get("CIVIC_DOCS_SCREENSHOTS") == "1":
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

    await page.get_by_role("link", name="Webhook löschen").click()
    await page.wait_for_load_state()
    await checked(page, "delete confirmation", phone)
    await page.get_by_role("button", name="Ja, Webhook löschen").click()
    await page.wait_for_load_state()
    assert "Der Webhook ist gelöscht." in await main_text(page) and url not in await main_text(page)
    await checked(page, "webhook deleted", phone)
    await page.context.close()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_an_operator_drops_a_dead_letter(civic: Civic, browser: Any, phone: bool) -> None:
    redis = aioredis.Redis.from_url(REDIS_URL)
    try:
        stream = REGISTRY.get("civic.registration.meeting.published.v1").stream
        await redis.xadd(Keys(PREFIX).stream(stream), {"event": b"{not json"})
    finally:
        await redis.aclose()

    page = await new_page(browser, javascript=False, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "staff,admin", name="Betrieb")
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/benachrichtigungen")
    await page.get_by_role("link", name="Zu den Fehlern").click()
    await page.wait_for_load_state()

    async def listed() -> bool:
        await page.reload()
        return "invalid event" in await main_text(page)

    await eventually(listed, timeout=30, interval=0.5, what="the dead letter on the page")
    await checked(page, "dead letters", phone)
    rows = page.get_by_role("row").filter(has_text="invalid event")
    count = await rows.count()
    await rows.first.get_by_role("button", name="Erneut verarbeiten").click()
    await page.wait_for_load_state()
    assert "lässt sich so nicht verarbeiten" in await main_text(page)
    await checked(page, "dead letter not retryable", phone)

    await page.get_by_role("row").filter(has_text="invalid event").first.get_by_role("link", name="Verwerfen").click()
    await page.wait_for_load_state()
    await checked(page, "drop confirmation", phone)
    await page.get_by_role("button", name="Ja, verwerfen").click()
    await page.wait_for_load_state()
    assert "Verworfen." in await main_text(page)
    assert await page.get_by_role("row").filter(has_text="invalid event").count() == count - 1
    await checked(page, "dead letter dropped", phone)
    await page.context.close()
