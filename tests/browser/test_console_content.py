"""The console's content pages in a real Chromium against civic in one process: sign in locally as an editor,
write a news item in Markdown (after a refused empty form), preview it, save and publish it and find it on the
citizen page; create a QR short link, follow it and read its daily scans; create a process with two phases
(after the API refused its short name) and publish it. On a desktop and a phone, axe-core
(WCAG 2.1 A/AA) on every page state. ``CIVIC_DOCS_SCREENSHOTS=1`` (or a missing image) renews the screenshot
in docs/console.md."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import TENANT
from tests.browser.support import Civic, assert_accessible, assert_reflows, new_page
from tests.console_support import sign_in_locally_page

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console-content.png"


async def checked(page: Any, state: str, phone: bool) -> None:
    await assert_accessible(page, state)
    if phone:
        await assert_reflows(page)


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_news_with_preview_and_a_short_link(civic: Civic, browser: Any, phone: bool) -> None:
    page = await new_page(browser, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "editor")
    base = f"{civic.base_url}/verwaltung/{TENANT}/inhalte"
    await page.goto(base)
    await checked(page, "content overview", phone)

    await page.get_by_role("link", name="Neue Neuigkeit").click()
    await page.wait_for_load_state()
    await checked(page, "new news form", phone)
    await page.get_by_role("button", name="Artikel anlegen").click()
    await page.wait_for_load_state()
    summary = page.get_by_role("alert")
    assert await summary.get_by_role("link", name="Bitte geben Sie Titel an.").get_attribute("href") == "#title"
    assert (await page.title()).startswith("Fehler:")
    await checked(page, "new news form with errors", phone)

    slug = "sommerfest-telefon" if phone else "sommerfest"
    await page.get_by_label("Titel").fill("Sommerfest im Kreishaus")
    await page.get_by_label("Kurzname für die Adresse").fill(slug)
    await page.get_by_label("Inhalt (Markdown)").fill(
        "Am **Samstag** feiern wir.\n\n| Zeit | Was |\n|---|---|\n| 14 Uhr | Musik |\n\n[Programm](https://example.org)"
    )
    await page.get_by_role("button", name="Vorschau").click()
    await page.wait_for_load_state()
    preview = page.locator(".civic-console-preview")
    assert await preview.locator("strong").inner_text() == "Samstag"
    assert await preview.get_by_role("table").count() == 1
    assert (await page.title()).startswith("Vorschau")
    await checked(page, "news form with preview", phone)

    await page.get_by_role("button", name="Artikel anlegen").click()
    await page.wait_for_load_state()
    assert "Angelegt als Entwurf" in await page.locator("main").inner_text()
    await checked(page, "news item (draft)", phone)
    await page.get_by_role("button", name="Veröffentlichen").click()
    await page.wait_for_load_state()
    assert "Veröffentlicht: Bürgerinnen und Bürger sehen es jetzt." in await page.locator("main").inner_text()
    await checked(page, "news item (published)", phone)
    await page.get_by_role("link", name="Seite für Bürgerinnen und Bürger").click()
    await page.wait_for_load_state()
    assert page.url.endswith(f"/{TENANT}/neuigkeiten/{slug}")
    assert await page.locator("strong").first.inner_text() == "Samstag"

    await page.goto(base + "/qr/neu")
    await checked(page, "new QR code form", phone)
    await page.get_by_label("Bezeichnung").fill("Plakat Kreishaus")
    await page.get_by_label("Zieladresse").fill(f"{civic.base_url}/{TENANT}/neuigkeiten/{slug}")
    await page.get_by_role("button", name="QR-Code anlegen").click()
    await page.wait_for_load_state()
    code = page.url.split("?")[0].rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=civic.base_url, timeout=10) as client:
        for _ in range(4):
            assert (await client.get(f"/q/{code}")).status_code == 302
    await page.reload()
    assert "4 insgesamt" in await page.locator("main").inner_text()
    await checked(page, "QR code with scans", phone)
    if not phone and (os.environ.get("CIVIC_DOCS_SCREENSHOTS") or not SCREENSHOT.exists()):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    await page.get_by_role("link", name="Ziel ändern").click()
    await page.wait_for_load_state()
    await checked(page, "retarget form", phone)
    await page.context.close()


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_a_process_with_phases(civic: Civic, browser: Any, phone: bool) -> None:
    page = await new_page(browser, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "editor")
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/inhalte/verfahren/neu")
    await checked(page, "new process form", phone)
    slug = "radweg-telefon" if phone else "radweg"
    await page.get_by_label("Titel").fill("Radweg an der Au")
    await page.get_by_label("Kurzname für die Adresse").fill("Radweg Au")
    await page.get_by_role("button", name="Verfahren anlegen").click()
    await page.wait_for_load_state()
    assert "nur Kleinbuchstaben" in await page.get_by_role("alert").inner_text()
    await checked(page, "new process form with the API's error", phone)
    await page.get_by_label("Kurzname für die Adresse").fill(slug)
    await page.get_by_role("button", name="Verfahren anlegen").click()
    await page.wait_for_load_state()
    await checked(page, "process (draft)", phone)

    await page.get_by_role("link", name="Phase hinzufügen").click()
    await page.wait_for_load_state()
    for title, starts in (("Bau", "2026-07-01"), ("Planung", "2026-01-01")):
        await page.get_by_label("Titel").fill(title)
        await page.get_by_label("Beginn").fill(starts)
        await page.get_by_role("button", name="Phase hinzufügen").click()
        await page.wait_for_load_state()
    items = page.locator(".civic-console-item")
    assert await items.count() == 2 and "Planung" in await items.first.inner_text(), "ordered by start"
    await checked(page, "phases", phone)
    await page.get_by_role("link", name="Verfahren", exact=True).click()
    await page.wait_for_load_state()
    await page.get_by_role("button", name="Veröffentlichen").click()
    await page.wait_for_load_state()
    await checked(page, "process (published)", phone)
    await page.get_by_role("link", name="Seite für Bürgerinnen und Bürger").click()
    await page.wait_for_load_state()
    assert "Planung" in await page.locator("main").inner_text()
    await page.context.close()
