"""The citizen's meeting story in a real Chromium, against civic in one process (services, web, SMTP sink):
open the meeting from the process page, register (after a refused empty form), open the manage link from the
mail the SMTP sink received, see the ticket, cancel through the confirmation page, and see the person on the
waiting list promoted in their mail. With JavaScript on and off, on a desktop and a phone; axe-core checks every
page state (error states included) for the WCAG 2.1 A/AA rules."""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest

from tests.browser.conftest import TENANT
from tests.browser.support import Civic, assert_accessible, assert_reflows, new_page
from tests.support import eventually, staff_headers

pytestmark = pytest.mark.asyncio(loop_scope="session")

MANAGE = re.compile(r"http://127\.0\.0\.1:\d+(/anmeldung/[A-Za-z0-9_-]+)")


async def publish_meeting_in_a_process(civic: Civic) -> tuple[str, str, str]:
    """A meeting with one seat and a waiting list, in a published process; (process slug, meeting id, title)."""
    headers = staff_headers(TENANT)
    starts = (datetime.now(UTC) + timedelta(days=10)).replace(microsecond=0)
    slug = f"verfahren-{secrets.token_hex(3)}"
    title = f"Auftakt {slug[-6:]}"
    async with httpx.AsyncClient(base_url=civic.base_url, headers=headers, timeout=10) as api:
        m = (
            (
                await api.post(
                    "/api/registration/staff/meetings",
                    json={
                        "title": title,
                        "description": "Wir stellen die Pläne vor und sammeln Ihre Ideen.",
                        "venue": {
                            "name": "Rathaus",
                            "street": "Markt 1",
                            "postal_code": "25746",
                            "city": "Heide",
                            "accessibility": "Stufenloser Zugang, Aufzug, barrierefreies WC.",
                        },
                        "starts_at": starts.isoformat(),
                        "ends_at": (starts + timedelta(hours=2)).isoformat(),
                        "capacity": 1,
                        "waitlist": True,
                        "max_companions": 1,
                        "attestations": [{"id": "3g", "text": "Für die Teilnahme gilt die 3G-Regel."}],
                        "questions": [
                            {
                                "id": "thema",
                                "label": "Welches Thema ist Ihnen wichtig?",
                                "kind": "single",
                                "options": ["Bildung", "Mobilität"],
                                "required": True,
                            }
                        ],
                    },
                )
            )
            .raise_for_status()
            .json()
        )
        (await api.post(f"/api/registration/staff/meetings/{m['id']}/publish")).raise_for_status()
        p = (
            (
                await api.post(
                    "/api/content/staff/processes",
                    json={"slug": slug, "title": {"de": "Digitale Strategie"}, "summary": {"de": "Reden Sie mit."}},
                )
            )
            .raise_for_status()
            .json()
        )
        (
            await api.post(
                f"/api/content/staff/processes/{p['id']}/references", json={"kind": "meeting", "ref_id": m["id"]}
            )
        ).raise_for_status()
        (await api.post(f"/api/content/staff/processes/{p['id']}/publish")).raise_for_status()

        async def listed() -> bool:
            page = (await api.get(f"/api/content/public/{TENANT}/processes/{slug}")).json()
            return bool(page["meetings"] and page["meetings"][0]["title"])

        await eventually(listed, timeout=60, interval=0.2, what="the meeting on the process page")
    return slug, str(m["id"]), title


async def register(page: Any, name: str, email: str, *, check: bool) -> None:
    await page.get_by_label("Ihr Name").fill(name)
    await page.get_by_label("E-Mail-Adresse").fill(email)
    await page.get_by_label("Mobilität").check()
    await page.get_by_label("Für die Teilnahme gilt die 3G-Regel.").check()
    await page.get_by_label("Das brauche ich, um teilnehmen zu können").fill("Gebärdensprachdolmetschung")
    await page.get_by_label(re.compile("Ich habe die Datenschutzhinweise gelesen")).check()
    await page.get_by_role("button", name=re.compile("anmelden|Warteliste")).click()
    await page.wait_for_load_state()
    if check:
        await assert_accessible(page, f"result page of {name}")


@pytest.mark.parametrize(
    ("javascript", "phone"),
    [(True, False), (False, False), (True, True), (False, True)],
    ids=["desktop", "desktop-no-js", "phone", "phone-no-js"],
)
async def test_register_manage_cancel_and_promotion(civic: Civic, browser: Any, javascript: bool, phone: bool) -> None:
    slug, meeting_id, title = await publish_meeting_in_a_process(civic)
    anna, ben = f"anna-{slug}@example.org", f"ben-{slug}@example.org"

    page = await new_page(browser, javascript=javascript, phone=phone)
    await page.goto(f"{civic.base_url}/{TENANT}/verfahren/{slug}")
    assert await page.locator("html").get_attribute("lang") == "de"
    await assert_accessible(page, "process page")
    if phone:
        await assert_reflows(page)
    await page.get_by_role("link", name=title).click()
    await page.wait_for_load_state()
    assert page.url.endswith(f"/{TENANT}/termine/{meeting_id}")
    await assert_accessible(page, "meeting page")
    assert await page.get_by_text("Anmeldung bis").count() >= 1
    assert await page.get_by_text("Stufenloser Zugang, Aufzug, barrierefreies WC.").count() == 1

    # Sending the empty form: the error summary at the top, linked to each field, in German.
    await page.get_by_role("button", name="Verbindlich anmelden").click()
    await page.wait_for_load_state()
    summary = page.get_by_role("alert")
    assert "Es gibt ein Problem" in await summary.inner_text()
    assert await summary.get_by_role("link", name="Bitte geben Sie Ihren Namen an.").get_attribute("href") == "#name"
    assert (await page.title()).startswith("Fehler:")
    await assert_accessible(page, "meeting page with errors")
    if phone:
        await assert_reflows(page)

    await register(page, "Anna Beispiel", anna, check=True)
    assert await page.get_by_role("heading", name="Sie sind angemeldet").count() == 1
    assert await page.get_by_role("img", name="QR-Code Ihres Tickets").count() == 1

    other = await new_page(browser, javascript=javascript, phone=phone)
    await other.goto(f"{civic.base_url}/{TENANT}/termine/{meeting_id}")
    await assert_accessible(other, "meeting page, full, with a waiting list")
    assert await other.get_by_role("button", name="Auf die Warteliste setzen").count() == 1
    await register(other, "Ben Beispiel", ben, check=True)
    assert "Platz 1 der Warteliste" in await other.locator("main").inner_text()

    # Anna opens the link in her confirmation mail, sees her ticket and cancels.
    confirmed = await civic.wait_for_mail(anna, "Anmeldung bestätigt:")
    manage_path = MANAGE.search(confirmed.get_body(("plain",)).get_content()).group(1)
    await page.goto(civic.base_url + manage_path)
    await assert_accessible(page, "manage page")
    ticket = page.get_by_role("img", name="QR-Code Ihres Tickets")
    assert await ticket.count() == 1
    image = await page.request.get(civic.base_url + await ticket.get_attribute("src"))
    assert image.status == 200 and image.headers["content-type"] == "image/png"
    assert await page.get_by_text("Gebärdensprachdolmetschung").count() == 1
    await page.get_by_role("link", name="Anmeldung absagen").click()
    await page.wait_for_load_state()
    assert await page.get_by_role("heading", name="Möchten Sie Ihre Anmeldung wirklich absagen?").count() == 1
    await assert_accessible(page, "cancel confirmation page")
    await page.get_by_role("button", name="Ja, Anmeldung absagen").click()
    await page.wait_for_load_state()
    assert "Sie haben Ihre Anmeldung abgesagt." in await page.locator("main").inner_text()
    await assert_accessible(page, "manage page after cancelling")
    assert await page.get_by_role("link", name="Anmeldung absagen").count() == 0

    # Ben moves up: his mail says a seat became free, and his manage link shows the ticket.
    promoted = await civic.wait_for_mail(ben, "Ein Platz ist frei geworden:")
    text = promoted.get_body(("plain",)).get_content()
    assert "Platz frei geworden" in text and "Warteliste" in text
    await other.goto(civic.base_url + MANAGE.search(text).group(1))
    assert "Ihre Anmeldung ist bestätigt." in await other.locator("main").inner_text()
    await assert_accessible(other, "manage page of the promoted person")
    await page.context.close()
    await other.context.close()


async def test_pages_in_english_and_error_pages(civic: Civic, browser: Any) -> None:
    slug, meeting_id, _title = await publish_meeting_in_a_process(civic)
    page = await new_page(browser, javascript=False)
    await page.goto(f"{civic.base_url}/{TENANT}/verfahren/{slug}")
    await page.get_by_role("link", name="English").click()
    await page.wait_for_load_state()
    assert await page.locator("html").get_attribute("lang") == "en"
    assert await page.get_by_role("heading", name="Events").count() == 1
    await assert_accessible(page, "process page in English")
    await page.goto(f"{civic.base_url}/{TENANT}/termine/{meeting_id}")
    await page.get_by_role("button", name="Register").click()
    await page.wait_for_load_state()
    assert "Please enter your name." in await page.get_by_role("alert").inner_text()
    await assert_accessible(page, "meeting page with errors in English")
    await page.get_by_role("link", name="Deutsch").click()

    for path, status in (
        ("/nirgendwo/da", 404),
        (f"/{TENANT}/termine/{uuid4()}", 404),
        ("/anmeldung/unbekannt", 404),
        ("/kurzlink/weg", 404),
    ):
        response = await page.goto(civic.base_url + path)
        assert response is not None and response.status == status, path
        await assert_accessible(page, f"error page {path}")
    response = await page.goto(f"{civic.base_url}/q/gibt-es-nicht")
    assert response is not None and page.url.endswith("/kurzlink/gibt-es-nicht")
    assert await page.get_by_role("heading", name="Dieser QR-Code führt zu keiner Seite mehr.").count() == 1
    for path in (f"/{TENANT}", f"/{TENANT}/leichte-sprache", "/lizenzen", "/abo/abbestellen?token=x"):
        await page.goto(civic.base_url + path)
        await assert_accessible(page, path)
    await page.context.close()


async def test_the_accessibility_check_finds_what_it_should(civic: Civic, browser: Any) -> None:
    """The axe helper fails on a page with a violation, with JavaScript on and off (it would otherwise prove
    nothing)."""
    for javascript in (True, False):
        page = await new_page(browser, javascript=javascript)
        await page.route(
            f"{civic.base_url}/kaputt",
            lambda route: route.fulfill(
                body='<!doctype html><html><title>x</title><body><main><input type="text"></main></body></html>',
                content_type="text/html",
            ),
        )
        await page.goto(f"{civic.base_url}/kaputt")
        with pytest.raises(AssertionError, match="label"):
            await assert_accessible(page, "a broken page")
        await page.context.close()
