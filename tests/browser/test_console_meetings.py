"""The console's meeting pages in a real Chromium against civic in one process: sign in locally as staff, create a
meeting (after a refused empty form), set its seats, publish it, take a phone registration without e-mail on the
waiting list, and read the registrations table; on a desktop and a phone, axe-core (WCAG 2.1 A/AA) on every page
state. The desktop run also takes the screenshot for docs/console.md."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from tests.browser.conftest import TENANT
from tests.browser.support import Civic, assert_accessible, assert_reflows, new_page
from tests.console_support import sign_in_locally_page

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console-meetings.png"


async def checked(page: Any, state: str, phone: bool) -> None:
    await assert_accessible(page, state)
    if phone:
        await assert_reflows(page)


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_create_publish_and_take_a_phone_registration(civic: Civic, browser: Any, phone: bool) -> None:
    page = await new_page(browser, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "staff")
    base = f"{civic.base_url}/verwaltung/{TENANT}/veranstaltungen"
    await page.goto(base)
    await checked(page, "meetings list", phone)

    await page.get_by_role("link", name="Neue Veranstaltung").click()
    await page.wait_for_load_state()
    await checked(page, "new meeting form", phone)
    await page.get_by_role("button", name="Veranstaltung anlegen").click()
    await page.wait_for_load_state()
    summary = page.get_by_role("alert")
    assert await summary.get_by_role("link", name="Bitte geben Sie einen Titel an.").get_attribute("href") == "#title"
    assert (await page.title()).startswith("Fehler:")
    await checked(page, "new meeting form with errors", phone)

    title = f"Werkstatt Ortsmitte ({'Telefon' if phone else 'Rechner'})"
    starts = (datetime.now(UTC) + timedelta(days=14)).astimezone(ZoneInfo("Europe/Berlin")).replace(hour=18, minute=0)
    await page.get_by_label("Titel").fill(title)
    await page.get_by_label("Beginn").fill(starts.strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_label("Ende").fill((starts + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"))
    await page.get_by_role("button", name="Veranstaltung anlegen").click()
    await page.wait_for_load_state()
    assert "als Entwurf angelegt" in await page.locator("main").inner_text()
    await checked(page, "meeting overview (draft)", phone)
    meeting_url = page.url.split("?")[0]

    await page.get_by_role("link", name="Ändern Plätze und Anmeldung").click()
    await page.wait_for_load_state()
    await checked(page, "seats and registration form", phone)
    await page.get_by_label("Plätze", exact=True).fill("1")
    await page.get_by_role("button", name="Speichern").click()
    await page.wait_for_load_state()
    await page.get_by_role("button", name="Veröffentlichen").click()
    await page.wait_for_load_state()
    assert "Die Veranstaltung ist veröffentlicht." in await page.locator("main").inner_text()
    await checked(page, "meeting overview (published)", phone)

    # One seat, taken online; the phone registrant goes on the waiting list.
    meeting_id = meeting_url.rsplit("/", 1)[1]
    async with httpx.AsyncClient(base_url=civic.base_url, timeout=10) as api:
        online = await api.post(
            f"/api/registration/meetings/{meeting_id}/registrations",
            json={"name": "Ronja Nettelbeck", "email": "ronja@example.org", "privacy_consent": True},
        )
        assert online.status_code == 201, online.text

    await page.goto(meeting_url + "/anmeldungen/neu")
    await checked(page, "entry form", phone)
    await page.get_by_role("button", name="Anmeldung aufnehmen").click()
    await page.wait_for_load_state()
    assert (await page.title()).startswith("Fehler:")
    await checked(page, "entry form with errors", phone)
    await page.get_by_label("per Telefon").check()
    await page.get_by_label("Name der Person").fill("Hans-Jürgen Öztürk")
    await page.get_by_label("Telefonnummer").fill("0481 97 1234")
    await page.get_by_label(re.compile("Die Person ist mit der Verarbeitung")).check()
    await page.get_by_role("button", name="Anmeldung aufnehmen").click()
    await page.wait_for_load_state()
    main = await page.locator("main").inner_text()
    assert "Hans-Jürgen Öztürk steht auf Platz 1 der Warteliste." in main
    assert "Ohne E-Mail-Adresse erhält die Person keine Nachricht" in main
    await checked(page, "entry result", phone)

    await page.get_by_role("link", name="Zu den Anmeldungen").click()
    await page.wait_for_load_state()
    table = page.get_by_role("table")
    assert "Hans-Jürgen Öztürk" in await table.inner_text() and "Ronja Nettelbeck" in await table.inner_text()
    await checked(page, "registrations table", phone)
    if not phone:
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    await page.get_by_label("Suche nach Namen").fill("öztürk")
    await page.get_by_role("button", name="Suchen").click()
    await page.wait_for_load_state()
    assert "Ronja Nettelbeck" not in await page.locator("main").inner_text()
    await checked(page, "registrations table, searched", phone)
    await page.context.close()
