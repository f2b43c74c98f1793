"""The call-back list in a real Chromium against civic in one process: signed in locally as staff, a meeting with
one seat, taken online; a phone registration without e-mail taken through the console's entry form goes on the
waiting list; the online registration is cancelled by its own link, so the phone registrant moves up; the
overview counts one open call, the call-back list shows them with a ``tel:`` link, and the call is marked done.
axe-core (WCAG 2.1 A/AA) on every state, on a desktop and a phone. With ``CIVIC_DOCS_SCREENSHOTS=1`` the desktop
run renews docs/img/console-callbacks.png."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.browser.conftest import TENANT
from tests.browser.support import Civic, assert_accessible, assert_reflows, new_page
from tests.console_support import sign_in_locally_page
from tests.support import staff_headers

pytestmark = pytest.mark.asyncio(loop_scope="session")

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "console-callbacks.png"


async def checked(page: Any, state: str, phone: bool) -> None:
    await assert_accessible(page, state)
    if phone:
        await assert_reflows(page)


@pytest.mark.parametrize("phone", [False, True], ids=["desktop", "phone"])
async def test_promoted_phone_registrant_on_the_call_back_list(civic: Civic, browser: Any, phone: bool) -> None:
    title = f"Ortsbeirat Süd ({'Telefon' if phone else 'Rechner'})"
    starts = (datetime.now(UTC) + timedelta(days=10)).replace(minute=0, second=0, microsecond=0)
    async with httpx.AsyncClient(base_url=civic.base_url, headers=staff_headers(TENANT), timeout=10) as api:
        r = await api.post(
            "/api/registration/staff/meetings",
            json={
                "title": title,
                "venue": {"name": "Rathaus Heide"},
                "starts_at": starts.isoformat(),
                "ends_at": (starts + timedelta(hours=2)).isoformat(),
                "capacity": 1,
            },
        )
        assert r.status_code == 201, r.text
        meeting_id = r.json()["id"]
        (await api.post(f"/api/registration/staff/meetings/{meeting_id}/publish")).raise_for_status()
        online = await api.post(
            f"/api/registration/meetings/{meeting_id}/registrations",
            json={"name": "Ronja Nettelbeck", "email": "ronja@example.org", "privacy_consent": True},
        )
        assert online.status_code == 201 and online.json()["status"] == "confirmed", online.text
        before = len((await api.get("/api/registration/staff/callbacks")).json())

    page = await new_page(browser, phone=phone)
    await sign_in_locally_page(page, civic.base_url, TENANT, "staff", name="Sachbearbeitung Heide")
    name = "Hans-Jürgen Öztürk" if not phone else "Gülay Petersen"
    number = "0481 97 1234" if not phone else "0481 97 4321"
    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/veranstaltungen/{meeting_id}/anmeldungen/neu")
    await page.get_by_label("per Telefon").check()
    await page.get_by_label("Name der Person").fill(name)
    await page.get_by_label("Telefonnummer").fill(number)
    await page.get_by_label(re.compile("Die Person ist mit der Verarbeitung")).check()
    await page.get_by_role("button", name="Anmeldung aufnehmen").click()
    await page.wait_for_load_state()
    assert f"{name} steht auf Platz 1 der Warteliste." in await page.locator("main").inner_text()

    # The online registrant cancels by their own link: the seat goes to the phone registrant, silently by mail.
    async with httpx.AsyncClient(base_url=civic.base_url, timeout=10) as citizen:
        gone = await citizen.delete(f"/api/registration/registrations/{online.json()['secret']}")
        assert gone.status_code == 200, gone.text

    await page.goto(f"{civic.base_url}/verwaltung/{TENANT}/")
    attention = page.locator("section", has=page.get_by_role("heading", name="Zu erledigen"))
    words = await attention.inner_text()
    open_now = before + 1
    expected = "1 Person wartet auf Ihren Anruf." if open_now == 1 else f"{open_now} Personen warten auf Ihren Anruf."
    assert expected in words, words
    await checked(page, "overview with an open call", phone)
    await attention.get_by_role("link", name="Zur Rückrufliste").click()
    await page.wait_for_load_state()
    assert (await page.title()).startswith("Rückrufliste")
    row = page.get_by_role("row").filter(has_text=name)
    assert await row.count() == 1
    assert title in await row.inner_text()
    assert "Von der Warteliste nachgerückt" in await row.inner_text()
    tel = row.get_by_role("link", name=re.compile(r"^\+49 481"))
    assert (await tel.get_attribute("href") or "").startswith("tel:+49481")
    await checked(page, "call-back list with an open call", phone)
    if not phone and os.environ.get("CIVIC_DOCS_SCREENSHOTS"):
        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)

    await row.get_by_role("button", name=re.compile("Anruf erledigt")).click()
    await page.wait_for_load_state()
    main = page.locator("main")
    assert f"Der Anruf bei {name} ist als erledigt vermerkt." in await main.inner_text()
    done = page.locator("section", has=page.get_by_role("heading", name="Erledigt", exact=True))
    assert name in await done.inner_text()
    assert await page.get_by_role("row").filter(has_text=name).get_by_role("button").count() == 0
    await checked(page, "call-back list after the call", phone)
    await page.context.close()
